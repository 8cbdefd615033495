/**
 * `equivae report`: its flag table and command live in src/report/command.ts, beside writeReport,
 * because the report's own tests run it in-process (cmdReport) and src/report must not import this folder.
 */
export { REPORT_COMMAND as command } from "../report/command.js";
