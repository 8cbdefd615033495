/** The command line as typed, recorded in manifests (training runs, --record) so a result can be redone. */
export function commandLine(): string {
  return ["equivae", ...process.argv.slice(2)].join(" ");
}
