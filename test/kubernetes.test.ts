// deploy/kubernetes against the real server and CLI. Renders the base, the production overlay and
// the sharded-embedding Jobs with `kubectl kustomize`, parses them, and checks: every --flag in a
// container's command/args is a flag of the subcommand it runs (serve: SERVE_FLAGS; embed and
// embed merge: their --help); every env name (env, envFrom ConfigMaps) is an env twin of a serve
// flag, one the embed help names, or one of the few documented others; the configuration parses
// with parseServeConfig; the probes are on the admin port and the real server, started with that
// configuration and a key file of the example Secret's shape, answers them 200 there; the Service
// reaches the traffic port; the grace period covers drain + body + request timeouts; the security
// context is non-root, read-only, no escalation, no capabilities, RuntimeDefault seccomp; and the
// Jobs' commands, run here with /data in a temporary folder, embed N shards and merge them.
// A copy of the base with an unknown flag, env name or too short a grace period must fail.
// Without kubectl the tests skip and say so; the overlay needs kubectl 1.21+ (kustomize v4+).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join, posix } from "node:path";
import { gzipSync } from "node:zlib";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { SERVE_FLAGS } from "../src/serve/config.js";
import { parseServeConfig, type ServeConfig } from "../src/serve/command.js";
import { KeyStore } from "../src/serve/auth.js";
import { runCli } from "./helpers/cli.js";
import { readNpy, writeIdx } from "./helpers/embed.js";
import { ROOT, tempDir } from "./helpers/paths.js";
import { send } from "./helpers/raw-http.js";
import { startServerProcess } from "./helpers/server-process.js";

const K8S = join(ROOT, "deploy", "kubernetes");
const BASE = join(K8S, "base");
const OVERLAY = join(K8S, "overlays", "production");
const EMBED_JOB = join(K8S, "embed-job");
const MERGE_JOB = join(EMBED_JOB, "merge");

/** The image's `node` user. */
const NODE_UID = 1000;

/**
 * Environment names the manifests may set that are not env twins of serve flags, and why:
 * EQUIVAE_API_KEYS is serve's environment-only key list (README, "Running in production");
 * ORT_DISABLE_TELEMETRY is ONNX Runtime's own switch (checked below to be in its library);
 * JOB_COMPLETION_INDEX is the Indexed Job's shard index.
 */
const SERVE_ENV_EXTRA = ["EQUIVAE_API_KEYS", "ORT_DISABLE_TELEMETRY"];
const JOB_ENV_EXTRA = ["ORT_DISABLE_TELEMETRY", "JOB_COMPLETION_INDEX"];

type Obj = Record<string, any>;

// ------------------------------------------------------------------------------------ kubectl

/** Why the manifests cannot be rendered here (no kubectl), else undefined; and kubectl's minor version. */
function kubectlCheck(): { missing?: string; minor: number; version: string } {
  const r = spawnSync("kubectl", ["version", "--client", "-o", "json"], { encoding: "utf8" });
  if (r.error)
    return {
      missing:
        "kubectl not found: install it (Debian: apt-get install kubernetes-client; .ci/run does) to check deploy/kubernetes",
      minor: NaN,
      version: "",
    };
  let v: { gitVersion?: string; minor?: string } = {};
  try {
    v = JSON.parse(r.stdout).clientVersion ?? {};
  } catch {
    // an unexpected answer: an unknown version
  }
  return { minor: parseInt(v.minor ?? "", 10), version: v.gitVersion ?? "of unknown version" };
}
const KUBECTL = kubectlCheck();
const SKIP = KUBECTL.missing;
/**
 * The overlay needs kustomize v4+ (kubectl 1.21+: 'patches', a directory in 'resources'); Debian
 * bookworm's kubernetes-client is kubectl 1.20 (kustomize v2.0.3), which still renders the base and
 * the Jobs.
 */
const SKIP_OVERLAY =
  SKIP ??
  (KUBECTL.minor >= 21
    ? undefined
    : `kubectl ${KUBECTL.version} is too old for the overlay: its kustomize reads neither 'patches' nor a directory in 'resources' (kubectl 1.21+, kustomize v4+, is needed)`);
if (SKIP) console.log(`# kubernetes tests skipped: ${SKIP}`);
else if (SKIP_OVERLAY) console.log(`# kubernetes overlay test skipped: ${SKIP_OVERLAY}`);

function render(dir: string): Obj[] {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", cwd: ROOT });
  assert.equal(r.status, 0, `kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const ofKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = ofKind(objs, kind).filter((o) => name === undefined || o.metadata.name === name);
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0];
}

/** Every pod template of the workloads (Deployment, Job, ...), with where it came from. */
function podSpecs(objs: Obj[]): Array<{ where: string; spec: Obj }> {
  return objs
    .filter((o) => o.spec?.template?.spec)
    .map((o) => ({ where: `${o.kind}/${o.metadata.name}`, spec: o.spec.template.spec }));
}

function containersOf(spec: Obj): Obj[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

// --------------------------------------------------------------------------- what the server has

/** --flag names and $ENV names in a help text. */
function helpNames(args: string[]): { flags: Set<string>; env: Set<string> } {
  const r = runCli(args);
  assert.equal(r.code, 0, `equivae ${args.join(" ")}: ${r.stderr}`);
  const flags = new Set([...r.stdout.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
  flags.add("help");
  const env = new Set([...r.stdout.matchAll(/\$([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]));
  return { flags, env };
}

interface Known {
  /** Flags of each subcommand: serve, embed, embed merge. */
  flags: Record<string, Set<string>>;
  /** Environment names each subcommand's containers may set. */
  env: Record<string, Set<string>>;
}

let knownCache: Known | undefined;
function known(): Known {
  if (knownCache) return knownCache;
  const embed = helpNames(["embed", "--help"]);
  const merge = helpNames(["embed", "merge", "--help"]);
  const jobEnv = new Set([...embed.env, ...JOB_ENV_EXTRA]);
  knownCache = {
    flags: {
      serve: new Set([...SERVE_FLAGS.map((f) => f.flag), "help"]),
      embed: embed.flags,
      "embed merge": merge.flags,
    },
    env: {
      serve: new Set([...SERVE_FLAGS.map((f) => f.env), ...SERVE_ENV_EXTRA]),
      embed: jobEnv,
      "embed merge": jobEnv,
    },
  };
  return knownCache;
}

/** The equivae subcommand a container runs and the tokens after it; undefined: not the CLI. */
function invocation(c: Obj): { sub: string; rest: string[] } | undefined {
  const tokens: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
  // No command: the image's CMD, `node ... dist/src/cli.js serve`.
  if (c.command === undefined && tokens.length === 0) return { sub: "serve", rest: [] };
  const at = tokens.findIndex((t) => t.endsWith("cli.js"));
  if (at < 0) return undefined;
  if (tokens[at + 1] === "embed" && tokens[at + 2] === "merge")
    return { sub: "embed merge", rest: tokens.slice(at + 3) };
  return { sub: tokens[at + 1] ?? "", rest: tokens.slice(at + 2) };
}

// ------------------------------------------------------------------------------------- checks

/** Every --flag of every container that runs the CLI is a flag of its subcommand. */
function flagProblems(objs: Obj[], k: Known): string[] {
  const problems: string[] = [];
  for (const { where, spec } of podSpecs(objs))
    for (const c of containersOf(spec)) {
      const inv = invocation(c);
      if (!inv) continue;
      const flags = k.flags[inv.sub];
      if (!flags) {
        problems.push(`${where} ${c.name}: 'equivae ${inv.sub}' is not a command checked here`);
        continue;
      }
      for (const t of inv.rest)
        if (t.startsWith("--")) {
          const name = t.slice(2).split("=")[0];
          if (!flags.has(name))
            problems.push(`${where} ${c.name}: --${name} is not a flag of 'equivae ${inv.sub}'`);
        }
    }
  return problems;
}

/** The environment a container gets: its ConfigMaps (envFrom) and env values; valueFrom as null. */
function containerEnv(objs: Obj[], c: Obj, problems: string[] = []): Map<string, string | null> {
  const env = new Map<string, string | null>();
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef?.name ?? from.secretRef?.name;
    const kind = from.configMapRef ? "ConfigMap" : "Secret";
    const src = ofKind(objs, kind).find((o) => o.metadata.name === ref);
    if (!src) {
      problems.push(`${c.name}: envFrom names ${kind} ${ref}, which is not in the rendered manifests`);
      continue;
    }
    for (const [key, value] of Object.entries({ ...src.data, ...src.stringData }))
      env.set((from.prefix ?? "") + key, String(value));
  }
  for (const e of c.env ?? []) env.set(e.name, e.value === undefined ? null : String(e.value));
  return env;
}

/** Every env name of every container that runs the CLI is one its subcommand reads. */
function envProblems(objs: Obj[], k: Known): string[] {
  const problems: string[] = [];
  for (const { where, spec } of podSpecs(objs))
    for (const c of containersOf(spec)) {
      const inv = invocation(c);
      if (!inv) continue;
      const allowed = k.env[inv.sub] ?? new Set<string>();
      for (const name of containerEnv(objs, c, problems).keys())
        if (!allowed.has(name))
          problems.push(`${where} ${c.name}: ${name} is not an environment variable of 'equivae ${inv.sub}'`);
    }
  return problems;
}

/** The fields a restricted pod needs, per container (the container's context over the pod's). */
function securityProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  for (const { where, spec } of podSpecs(objs))
    for (const c of containersOf(spec)) {
      const pod = spec.securityContext ?? {};
      const own = c.securityContext ?? {};
      const eff = {
        runAsNonRoot: own.runAsNonRoot ?? pod.runAsNonRoot,
        runAsUser: own.runAsUser ?? pod.runAsUser,
        seccomp: (own.seccompProfile ?? pod.seccompProfile)?.type,
      };
      const want: Array<[string, boolean]> = [
        ["runAsNonRoot: true", eff.runAsNonRoot === true],
        [`runAsUser: ${NODE_UID}`, eff.runAsUser === NODE_UID],
        ["readOnlyRootFilesystem: true", own.readOnlyRootFilesystem === true],
        ["allowPrivilegeEscalation: false", own.allowPrivilegeEscalation === false],
        ["capabilities.drop: [ALL]", (own.capabilities?.drop ?? []).includes("ALL")],
        ["seccompProfile: RuntimeDefault", eff.seccomp === "RuntimeDefault"],
      ];
      for (const [what, ok] of want)
        if (!ok) problems.push(`${where} ${c.name}: securityContext needs ${what}`);
    }
  return problems;
}

/** The serve container of the one Deployment, and its parsed configuration. */
function serveSetup(objs: Obj[]): { deploy: Obj; c: Obj; env: Record<string, string>; cfg: ServeConfig } {
  const deploy = one(objs, "Deployment");
  const c = deploy.spec.template.spec.containers.find((x: Obj) => invocation(x)?.sub === "serve");
  assert.ok(c, "the Deployment runs no 'equivae serve' container");
  const problems: string[] = [];
  const env = Object.fromEntries(
    [...containerEnv(objs, c, problems)].filter((e): e is [string, string] => e[1] !== null),
  );
  assert.deepEqual(problems, []);
  const cfg = parseServeConfig(invocation(c)!.rest, env);
  assert.notEqual(cfg, "help");
  return { deploy, c, env, cfg: cfg as ServeConfig };
}

/** The grace period covers the drain, the longest request (body + request timeouts) and 5 s. */
function gracePeriodProblems(deploy: Obj, cfg: ServeConfig): string[] {
  const grace = deploy.spec.template.spec.terminationGracePeriodSeconds ?? 30;
  const need = cfg.drainSecs + Math.ceil((cfg.limits.bodyTimeoutMs + cfg.limits.timeoutMs) / 1000) + 5;
  return grace >= need
    ? []
    : [
        `terminationGracePeriodSeconds ${grace} < drain ${cfg.drainSecs} s + body and request timeouts ` +
          `${(cfg.limits.bodyTimeoutMs + cfg.limits.timeoutMs) / 1000} s + 5 s margin = ${need}`,
      ];
}

/** A container port by number or name. */
function portNumber(c: Obj, port: number | string): number {
  if (typeof port === "number") return port;
  const p = (c.ports ?? []).find((x: Obj) => x.name === port);
  assert.ok(p, `${c.name} has no port named ${port}`);
  return p.containerPort;
}

function probesOf(c: Obj): Array<{ kind: string; path: string; port: number }> {
  return ["readinessProbe", "livenessProbe", "startupProbe"]
    .filter((k) => c[k])
    .map((k) => {
      assert.ok(c[k].httpGet, `${c.name} ${k} is not an HTTP probe`);
      return { kind: k, path: c[k].httpGet.path, port: portNumber(c, c[k].httpGet.port) };
    });
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Checks shared by the base and the overlay: wiring of Service, HPA, PDB, probes, resources. */
function checkServing(objs: Obj[]): { deploy: Obj; c: Obj; env: Record<string, string>; cfg: ServeConfig } {
  const k = known();
  assert.deepEqual(flagProblems(objs, k), []);
  assert.deepEqual(envProblems(objs, k), []);
  assert.deepEqual(securityProblems(objs), []);
  const s = serveSetup(objs);
  const { deploy, c, cfg } = s;
  assert.deepEqual(gracePeriodProblems(deploy, cfg), []);
  const labels = deploy.spec.template.metadata.labels;
  assert.ok(matches(deploy.spec.selector.matchLabels, labels));

  // Probes: /readyz and /healthz on the admin port, never on the traffic port.
  assert.ok(cfg.adminPort !== undefined && cfg.adminPort !== cfg.port, "no separate admin port");
  const probes = probesOf(c);
  assert.deepEqual(probes.map((p) => [p.kind, p.path]).sort(), [
    ["livenessProbe", "/healthz"],
    ["readinessProbe", "/readyz"],
  ]);
  for (const p of probes) assert.equal(p.port, cfg.adminPort, `${p.kind} is not on the admin port`);
  assert.equal(portNumber(c, "http"), cfg.port);
  const ann = deploy.spec.template.metadata.annotations ?? {};
  if (ann["prometheus.io/port"]) assert.equal(Number(ann["prometheus.io/port"]), cfg.adminPort);

  // The Service: ClusterIP, port 80 to the traffic port of these pods.
  const svc = one(objs, "Service");
  assert.equal(svc.spec.type ?? "ClusterIP", "ClusterIP");
  assert.ok(matches(svc.spec.selector, labels), "the Service selects other pods");
  assert.equal(svc.spec.ports.length, 1);
  assert.equal(svc.spec.ports[0].port, 80);
  assert.equal(portNumber(c, svc.spec.ports[0].targetPort), cfg.port);

  // The HPA owns the replica count and scales on CPU, which needs a CPU request.
  const hpa = one(objs, "HorizontalPodAutoscaler");
  assert.equal(hpa.apiVersion, "autoscaling/v2");
  assert.deepEqual(
    [hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name],
    ["Deployment", deploy.metadata.name],
  );
  assert.ok(
    hpa.spec.metrics.some((m: Obj) => m.type === "Resource" && m.resource.name === "cpu"),
    "the HPA does not scale on CPU",
  );
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
  assert.equal(deploy.spec.replicas, undefined, "spec.replicas would fight the HPA on every apply");
  const res = c.resources;
  assert.ok(res?.requests?.cpu && res?.requests?.memory && res?.limits?.memory, "requests/limits missing");
  // One inference worker per CPU requested (the default would be every core of the node).
  assert.equal(cfg.workers, Number(res.requests.cpu), "EQUIVAE_WORKERS differs from the CPU request");

  // The PDB covers these pods.
  const pdb = one(objs, "PodDisruptionBudget");
  assert.ok(matches(pdb.spec.selector.matchLabels, labels));

  // /tmp is writable under the read-only root.
  const tmp = (c.volumeMounts ?? []).find((m: Obj) => m.mountPath === "/tmp");
  const tmpVol = deploy.spec.template.spec.volumes.find((v: Obj) => v.name === tmp?.name);
  assert.ok(tmpVol?.emptyDir, "no emptyDir at /tmp");
  return s;
}

// -------------------------------------------------------------------------------------- tests

test(
  "kubernetes base: flags, env, probes, drain, security (with the real server)",
  { skip: SKIP },
  async () => {
    const objs = render(BASE);
    const { c, env, cfg, deploy } = checkServing(objs);
    // The model is the one baked into the image (no model setting), and no Secret is rendered:
    // the API keys come from a Secret created by hand (secret-api-keys.example.yaml says why).
    assert.equal(cfg.modelRepository, undefined);
    assert.equal(env.EQUIVAE_MODEL_DIR, undefined);
    assert.equal(c.image, "equivae-serve:latest");
    assert.deepEqual(ofKind(objs, "Secret"), []);

    // The key file: the example Secret's key, mounted where EQUIVAE_API_KEY_FILE points.
    const example = parseYaml(readFileSync(join(BASE, "secret-api-keys.example.yaml"), "utf8")) as Obj;
    const [keyName] = Object.keys(example.stringData);
    assert.ok(cfg.apiKeyFile, "no EQUIVAE_API_KEY_FILE");
    assert.equal(posix.basename(cfg.apiKeyFile), keyName);
    const mount = c.volumeMounts.find((m: Obj) => m.mountPath === posix.dirname(cfg.apiKeyFile!));
    assert.ok(mount && !mount.subPath, "the key file's folder is not mounted (whole, not subPath)");
    const vol = deploy.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name);
    assert.equal(vol?.secret?.secretName, example.metadata.name);
    assert.equal(vol?.secret?.optional, undefined, "a missing Secret must keep the pod from starting");

    // The example as it is never works as a key; with a real key in its place it does.
    const dir = tempDir("equivae-k8s-");
    const exampleFile = join(dir, "example.txt");
    writeFileSync(exampleFile, example.stringData[keyName]);
    assert.throws(() => new KeyStore({ file: exampleFile }), /line 2/);
    const key = randomBytes(24).toString("hex");
    const keyFile = join(dir, keyName);
    writeFileSync(keyFile, String(example.stringData[keyName]).replace(/^<.*>$/m, key));
    assert.equal(new KeyStore({ file: keyFile }).size, 1);

    // The real server with the ConfigMap's settings (ports 0 on loopback instead of 8080/8081 on
    // every interface; the key file here): the probes answer 200 on the admin port, without a key.
    const server = await startServerProcess(["--admin-port", "0"], {
      env: { ...env, EQUIVAE_API_KEY_FILE: keyFile },
    });
    try {
      assert.ok(server.adminPort, `no admin port in the start line:\n${server.output()}`);
      for (const p of probesOf(c)) {
        const r = await send(server.adminPort!, p.path, { method: "GET", timeoutMs: 5000 });
        assert.equal(r.status, 200, `${p.kind} GET ${p.path} on the admin port: ${r.status ?? r.error}`);
      }
      const metricsPath = deploy.spec.template.metadata.annotations["prometheus.io/path"];
      const m = await send(server.adminPort!, metricsPath, { method: "GET", timeoutMs: 5000 });
      assert.equal(m.status, 200, `GET ${metricsPath} on the admin port`);
      // The keys are in force on the traffic port.
      const denied = await send(server.port, "/v1/models", { method: "GET", timeoutMs: 5000 });
      assert.equal(denied.status, 401);
      const allowed = await send(server.port, "/v1/models", {
        method: "GET",
        headers: { authorization: `Bearer ${key}` },
        timeoutMs: 5000,
      });
      assert.equal(allowed.status, 200);
    } finally {
      await server.stop();
    }
    assert.equal((await server.exited).code, 0, "the server did not drain and exit 0");
  },
);

test("kubernetes base: a made-up flag, env name or a short grace period is reported", { skip: SKIP }, () => {
  const objs = render(BASE);
  const k = known();
  assert.deepEqual(flagProblems(objs, k), []);

  const withFlag = structuredClone(objs);
  const c = one(withFlag, "Deployment").spec.template.spec.containers[0];
  c.args = [...(c.args ?? []), "--no-such-flag", "1"];
  const flagged = flagProblems(withFlag, k);
  assert.equal(flagged.length, 1);
  assert.match(flagged[0], /--no-such-flag is not a flag of 'equivae serve'/);

  const withEnv = structuredClone(objs);
  one(withEnv, "ConfigMap").data.EQUIVAE_NO_SUCH_SETTING = "1";
  assert.match(envProblems(withEnv, k).join("\n"), /EQUIVAE_NO_SUCH_SETTING is not an environment variable/);

  const short = structuredClone(objs);
  const { cfg } = serveSetup(short);
  one(short, "Deployment").spec.template.spec.terminationGracePeriodSeconds = cfg.drainSecs;
  assert.match(gracePeriodProblems(one(short, "Deployment"), cfg).join(), /terminationGracePeriodSeconds/);

  const rooted = structuredClone(objs);
  delete one(rooted, "Deployment").spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem;
  assert.match(securityProblems(rooted).join(), /readOnlyRootFilesystem/);
});

test("kubernetes production overlay: pinned image, model volume, sizes", { skip: SKIP_OVERLAY }, () => {
  const objs = render(OVERLAY);
  const { c, cfg, deploy } = checkServing(objs);
  assert.doesNotMatch(c.image, /:latest$|^equivae-serve/, "the overlay does not pin the image");
  // The model repository is a read-only volume mounted where EQUIVAE_MODEL_REPOSITORY points.
  assert.ok(cfg.modelRepository, "the overlay mounts no model repository");
  const mount = c.volumeMounts.find((m: Obj) => m.mountPath === cfg.modelRepository);
  assert.ok(mount?.readOnly, "the model volume is not mounted read-only at EQUIVAE_MODEL_REPOSITORY");
  const vol = deploy.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name);
  const claim = vol?.persistentVolumeClaim?.claimName;
  assert.ok(claim, "the model volume is not a PVC");
  const pvc = one(objs, "PersistentVolumeClaim", claim);
  assert.ok(
    pvc.spec.accessModes.some((m: string) => m === "ReadOnlyMany" || m === "ReadWriteMany"),
    "the model PVC cannot be mounted by replicas on several nodes",
  );
  // Exactly one Deployment, and the overlay's ConfigMap replaced the base's (merge, one hash).
  assert.equal(ofKind(objs, "ConfigMap").length, 1);
});

test("ONNX Runtime reads ORT_DISABLE_TELEMETRY (the manifests set it)", (t) => {
  const pkg = dirname(createRequire(import.meta.url).resolve("onnxruntime-node/package.json"));
  const lib = join(pkg, "bin", "napi-v6", process.platform, process.arch, "libonnxruntime.so.1");
  if (!existsSync(lib)) return t.skip(`no ${lib} on this platform`);
  assert.ok(
    readFileSync(lib).includes("ORT_DISABLE_TELEMETRY"),
    `${lib} no longer reads ORT_DISABLE_TELEMETRY`,
  );
});

test("kubernetes embed Job: N Indexed shards and the merge, run as written", { skip: SKIP }, () => {
  const objs = render(EMBED_JOB);
  const mergeObjs = render(MERGE_JOB);
  const k = known();
  for (const o of [objs, mergeObjs]) {
    assert.deepEqual(flagProblems(o, k), []);
    assert.deepEqual(envProblems(o, k), []);
    assert.deepEqual(securityProblems(o), []);
  }
  const job = one(objs, "Job");
  assert.equal(job.spec.completionMode, "Indexed");
  const n = job.spec.completions;
  assert.ok(Number.isInteger(n) && n >= 1 && job.spec.parallelism <= n);
  const spec = job.spec.template.spec;
  assert.equal(spec.restartPolicy, "Never");
  const c = spec.containers.find((x: Obj) => invocation(x)?.sub === "embed");
  assert.ok(c, "the Job runs no 'equivae embed'");
  const rest = invocation(c)!.rest;
  const arg = (flag: string) => rest[rest.indexOf(flag) + 1];
  assert.equal(arg("--shard"), `$(JOB_COMPLETION_INDEX)/${n}`, "--shard I/N does not match completions");
  assert.match(arg("--output"), /\$\(JOB_COMPLETION_INDEX\)/, "every shard would write the same output");
  assert.ok(rest.includes("--resume"), "a retried shard would start over (or refuse): --resume");
  assert.ok(c.env.some((e: Obj) => e.name === "JOB_COMPLETION_INDEX"));

  // The merge takes every part 0..N-1, in order, from the same volume.
  const merge = one(mergeObjs, "Job");
  const mc = merge.spec.template.spec.containers[0];
  const mrest = invocation(mc)!.rest;
  assert.equal(invocation(mc)!.sub, "embed merge");
  const out = mrest[mrest.indexOf("--output") + 1];
  const parts = mrest.filter((t, i) => !t.startsWith("--") && mrest[i - 1] !== "--output");
  const partOf = (i: number) => arg("--output").replace("$(JOB_COMPLETION_INDEX)", String(i));
  assert.deepEqual(
    parts,
    Array.from({ length: n }, (_, i) => partOf(i)),
  );
  const claim = (j: Obj) => j.spec.template.spec.volumes.map((v: Obj) => v.persistentVolumeClaim?.claimName);
  assert.deepEqual(claim(merge), claim(job));
  const pvc = one(objs, "PersistentVolumeClaim", claim(job)[0]);
  assert.ok(pvc.spec.accessModes.includes("ReadWriteMany"), "the shards' pods need a ReadWriteMany volume");

  // Run them: /data is a temporary folder, the input a 600-image IDX at the path the Job reads.
  const data = tempDir("equivae-k8s-job-");
  const local = (t: string, i?: number) =>
    t.replaceAll("/data", data).replaceAll("$(JOB_COMPLETION_INDEX)", i === undefined ? "?" : String(i));
  const input = local(arg("--input"));
  mkdirSync(dirname(input), { recursive: true });
  writeIdx(`${input}.raw`, 600);
  writeFileSync(input, gzipSync(readFileSync(`${input}.raw`)));
  const run = (cont: Obj, i?: number) => {
    const tokens: string[] = [...(cont.command ?? []), ...(cont.args ?? [])].map((t) => local(String(t), i));
    const env = Object.fromEntries(
      (cont.env ?? []).filter((e: Obj) => e.value !== undefined).map((e: Obj) => [e.name, String(e.value)]),
    );
    if (i !== undefined) env.JOB_COMPLETION_INDEX = String(i);
    const cmd = tokens[0] === "node" ? process.execPath : tokens[0];
    const r = spawnSync(cmd, tokens.slice(1), {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${tokens.join(" ")}:\n${r.stderr}`);
    return r.stdout;
  };
  for (let i = 0; i < n; i++) {
    for (const init of spec.initContainers ?? []) run(init, i);
    run(c, i);
  }
  assert.match(run(mc), new RegExp(`merged ${n} shards of 600 records`));
  const v = local(out).replace(/\.npy$/, ".v.npy");
  assert.deepEqual(readNpy(v).shape.slice(0, 1), [600]);
});
