import type { Engine } from "../../src/inference/index.js";
import type { ExportManifest } from "../../src/checkpoint/index.js";

/** A tiny deterministic Engine (8x8x1 images, 2 classes, dv = dz = 2) whose calls can be slowed down. */
export class FakeEngine implements Engine {
  readonly kind = "onnx" as const;
  readonly config = { height: 8, width: 8, channels: 1, numClasses: 2, dv: 2, dz: 2 } as Engine["config"];
  readonly manifest = {
    model: this.config,
    dataset: { name: "fake" },
    createdAt: "now",
    parameterCount: 0,
    metrics: null,
  } as unknown as ExportManifest;
  readonly classNames = ["a", "b"];
  readonly centroids = Float32Array.from([0, 0, 1, 1]);
  delayMs = 0;
  /** Resolves the warm-up (classify) call; until then it hangs when `holdWarmUp` is set. */
  holdWarmUp = false;
  private releaseWarm?: () => void;
  readonly calls: Array<{ op: string; n: number }> = [];

  releaseWarmUp(): void {
    this.releaseWarm?.();
  }

  private async wait(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
  }

  private mean(x: Float32Array, n: number): Float32Array {
    const d = x.length / n;
    const v = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += x[i * d + k];
      v[i * 2] = v[i * 2 + 1] = s / d;
    }
    return v;
  }

  async embedInvariant(x: Float32Array, n: number): Promise<Float32Array> {
    this.calls.push({ op: "invariant", n });
    await this.wait();
    return this.mean(x, n);
  }

  async embedSet(x: Float32Array, sizes: number[]): Promise<Float32Array> {
    this.calls.push({ op: "set", n: sizes.length });
    await this.wait();
    const n = sizes.reduce((a, b) => a + b, 0);
    const v = this.mean(x, n);
    return Float32Array.from([
      v.reduce((a, b) => a + b, 0) / (2 * n),
      v.reduce((a, b) => a + b, 0) / (2 * n),
    ]);
  }

  async encodeEquivariant(x: Float32Array, n: number, v: Float32Array) {
    this.calls.push({ op: "equivariant", n });
    await this.wait();
    return { mu: v.slice(), logvar: new Float32Array(n * 2) };
  }

  async decode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array> {
    this.calls.push({ op: "decode", n });
    await this.wait();
    return new Float32Array(n * 64).fill(0.5);
  }

  async classify(
    x: Float32Array,
    n: number,
  ): Promise<Array<Array<{ label: number; name: string; p: number }>>> {
    this.calls.push({ op: "classify", n });
    if (this.holdWarmUp) await new Promise<void>((r) => (this.releaseWarm = r));
    return Array.from({ length: n }, () => [{ label: 0, name: "a", p: 1 }]);
  }

  readonly hasPosterior = false;

  async posteriorProbs(): Promise<Float32Array> {
    throw new Error("no q(y|x)");
  }

  async classifyPosterior(): Promise<Array<Array<{ label: number; name: string; p: number }>>> {
    throw new Error("no q(y|x)");
  }

  async dispose(): Promise<void> {}
}
