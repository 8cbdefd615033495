/**
 * The curl examples of the README's "Serve" section, in order (later ones use the files earlier
 * ones write). test/http-curl.test.ts runs exactly these against a listening server, with the port
 * 8080 replaced by the test server's; `expect` must match the command's stdout.
 */
export interface CurlExample {
  title: string;
  command: string;
  expect: RegExp;
}

export const CURL_EXAMPLES: CurlExample[] = [
  {
    title: "Liveness and readiness",
    command: "curl -s localhost:8080/healthz && curl -s localhost:8080/readyz",
    expect: /"status":"ready"/,
  },
  {
    title: "The loaded model, its classes and limits",
    command: "curl -s localhost:8080/v1/models",
    expect: /"classes":\["0","1"/,
  },
  {
    title:
      "The z dimensions the model uses, largest KL first (all of z_activity: jq '.models[0].z_activity')",
    command: `curl -s localhost:8080/v1/models | grep -o '"active_dims":\\[[0-9,]*\\]'`,
    expect: /^"active_dims":\[3,8,7\]\s*$/,
  },
  {
    title: "Generate a 7 (class centroid, z from the prior with seed 1) as a PNG",
    command: `curl -s localhost:8080/generate -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{"class": "7", "seed": 1}' -o seven.png && file seven.png`,
    expect: /PNG image data, 28 x 28/,
  },
  {
    title: "Classify an uploaded PNG (top 3 classes)",
    command: "curl -s localhost:8080/classify -F image=@seven.png -F top_k=3",
    expect: /"predictions":\[\{"label":7/,
  },
  {
    title: "Classify base64 JSON (use `base64 -w0` on Linux, `base64 -i` on macOS)",
    command: `curl -s localhost:8080/v1/classify -H 'Content-Type: application/json' -d "{\\"images\\": [\\"$(base64 -w0 seven.png)\\"]}"`,
    expect: /"label":7/,
  },
  {
    title: "Invariant embedding v of each image",
    command: "curl -s localhost:8080/embed/invariant -F image=@seven.png -F image=@seven.png",
    expect: /"v":\[\[.*\],\[.*\]\],"set":false/,
  },
  {
    title: "One v for a same-class set of images",
    command: "curl -s localhost:8080/embed/invariant -F image=@seven.png -F image=@seven.png -F set=true",
    expect: /"set":true/,
  },
  {
    title: "Equivariant latent (mu, logvar) with v from the class '7' centroid",
    command: "curl -s localhost:8080/embed/equivariant -F image=@seven.png -F class=7",
    expect: /"v_from":"class"/,
  },
  {
    title: "Raw pixels, light-on-dark 28x28 flat array (here all zeros)",
    command: `curl -s localhost:8080/classify -H 'Content-Type: application/json' -d "{\\"pixels\\": [[$(printf '0,%.0s' $(seq 783))0]]}"`,
    expect: /"predictions"/,
  },
  {
    title: "Style transfer: the style (z) of seven.png drawn as a 3, as JSON pixel arrays",
    command: "curl -s localhost:8080/generate -F image=@seven.png -F class=3 -F format=json",
    expect: /"z_from":"images"/,
  },
  {
    title: "A 4x4 grid of samples of class 2",
    command: `curl -s localhost:8080/generate -H 'Content-Type: application/json' -d '{"class": 2, "count": 16, "seed": 7, "format": "grid"}' -o twos.png && file twos.png`,
    expect: /PNG image data, 112 x 112/,
  },
  {
    title: "Interpolate z along the most active dimension, z[3], from -2 to 2 (a row of 8 images)",
    command: `curl -s localhost:8080/generate -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{"class": 5, "interpolate": {"from": [0,0,0,-2,0,0,0,0,0,0,0,0,0,0,0,0], "to": [0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0], "steps": 8}}' -o row.png && file row.png`,
    expect: /PNG image data, 224 x 28/,
  },
  {
    title: "An error: an unknown class is a 422 problem+json",
    command: `curl -s localhost:8080/generate -H 'Content-Type: application/json' -d '{"class": "cat"}'`,
    expect: /"status":422/,
  },
  {
    title: "Prometheus metrics",
    command: "curl -s localhost:8080/metrics | grep -c equivae_http_request_duration_seconds_bucket",
    expect: /^[1-9]\d*\s*$/,
  },
  {
    title: "The spec and its HTML page",
    command:
      "curl -s localhost:8080/openapi.yaml | head -1 && curl -s -o /dev/null -w '%{http_code}\\n' localhost:8080/docs",
    expect: /openapi: 3\.1\.0\s+200/,
  },
];
