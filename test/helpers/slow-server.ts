// A server over a slow fake engine, for the SIGTERM drain test: prints its URL, then "ready".
import { startServer } from "../../src/serve/server.js";
import { FakeEngine } from "./fake-engine.js";

const engine = new FakeEngine();
engine.delayMs = Number(process.env.FAKE_DELAY_MS ?? 1500);
const s = await startServer(engine, { port: 0, host: "127.0.0.1", info: (m) => console.log(m) });
await s.app.ready;
console.log(`URL ${s.url}`);
