/**
 * Kernels this project registers on top of TF.js's, by name. The model calls them only where the
 * current backend has them (tf.getKernel), and falls back to TF.js's ops elsewhere.
 */

/** ReluGrad(dy, y) = dy where y > 0, else 0 (TensorFlow's ReluGrad; y may be the relu's output). */
export const RELU_GRAD = "EquiVAEReluGrad";
