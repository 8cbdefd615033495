#!/usr/bin/env bash
# build-tfjs-node.sh — enable the optional native `tensorflow` TF.js backend
# (@tensorflow/tfjs-node) on a machine WITHOUT internet access.
#
# Usage (from the project root):
#   bash scripts/build-tfjs-node.sh              # install + build + verify (idempotent)
#   bash scripts/build-tfjs-node.sh --verify     # only run the verification
#   bash scripts/build-tfjs-node.sh --force      # re-extract the library and rebuild the addon
#   bash scripts/build-tfjs-node.sh --uninstall  # remove @tensorflow/tfjs-node again
#   bash scripts/build-tfjs-node.sh --uninstall --purge   # ... and drop the cached wheel
#
# Why this script exists
#   @tensorflow/tfjs-node's own install script downloads a prebuilt
#   libtensorflow (and a prebuilt addon) from the internet, which fails here.
#   The TensorFlow C API is however also shipped inside the `tensorflow-cpu`
#   Python wheel, which pip can get from the local package index:
#     tensorflow/libtensorflow_cc.so.2        exports the TF_* / TFE_* C API
#     tensorflow/libtensorflow_framework.so.2 its only non-system dependency
#     tensorflow/include/...                  the C API headers
#   We put those into node_modules/@tensorflow/tfjs-node/deps/{lib,include},
#   add the file names the addon's binding.gyp / install.js look for, and
#   compile the N-API addon with node-gyp against Node's own headers.
#
# What it changes
#   * node_modules/ only: tfjs-node is installed with --no-save, so
#     package.json and package-lock.json stay untouched. NOTE: because it is
#     not in the lockfile, a later `npm install` / `npm ci` removes it again;
#     just re-run this script afterwards.
#   * .tmp/tf-wheel/ (gitignored): the downloaded wheel (~270 MB), kept so a
#     re-run does not need pip at all. Override with TFJS_NODE_WHEEL_DIR.
#   * Disk: ~850 MB in node_modules/@tensorflow/tfjs-node/deps (+ the wheel).
#
# Runtime: nothing to configure. The addon is linked with
# RPATH=$ORIGIN/../../deps/lib and libtensorflow_cc.so.2 finds
# libtensorflow_framework.so.2 through its own RUNPATH=$ORIGIN, so no
# LD_LIBRARY_PATH is needed. Use the backend with
#   import * as tf from '@tensorflow/tfjs-node'   (then tf.getBackend() === 'tensorflow')
# TensorFlow prints a few C++ log lines to stderr on load; TF_CPP_MIN_LOG_LEVEL=2
# hides most, the 'oneDNN custom operations are on' line appears regardless.
#
# Requirements: node + npm, pip (only if the wheel is not cached yet), python3,
# a C++ compiler and make (node-gyp), and Node's headers (npm's `nodedir`
# config, or <node prefix>/include/node).

set -euo pipefail

# ----------------------------------------------------------------------------
# Pinned versions / names
# ----------------------------------------------------------------------------
TFJS_NODE_VERSION="4.22.0"          # must match the project's @tensorflow/tfjs
TF_PIP_SPEC="tensorflow-cpu==2.21.*" # wheel providing the TensorFlow C API
TF_WHEEL_GLOB="tensorflow_cpu-2.21.*.whl"
# tfjs-node 4.22.0 was written for libtensorflow 2.9.1: scripts/install.js and
# deps-constants.js look for deps/lib/libtensorflow.so.2.9.1 and binding.gyp
# links with -ltensorflow -ltensorflow_framework. The real files from the wheel
# keep their own names (their SONAMEs); these are symlinks to them.
LIBTF_LEGACY_VERSION="2.9.1"

ROOT="$(pwd)"
PKG_NAME="@tensorflow/tfjs-node"
PKG_DIR="$ROOT/node_modules/@tensorflow/tfjs-node"
DEPS_DIR="$PKG_DIR/deps"
STAMP="$DEPS_DIR/.from-wheel"       # records which wheel deps/ came from
WHEEL_DIR="${TFJS_NODE_WHEEL_DIR:-$ROOT/.tmp/tf-wheel}"

log()  { printf '[build-tfjs-node] %s\n' "$*"; }
die()  { printf '[build-tfjs-node] ERROR: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------
MODE="install"; FORCE=0; PURGE=0
for arg in "$@"; do
  case "$arg" in
    --uninstall) MODE="uninstall" ;;
    --verify)    MODE="verify" ;;
    --force)     FORCE=1 ;;
    --purge)     PURGE=1 ;;
    -h|--help)   sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

[[ -f "$ROOT/package.json" ]] || die "run this from the project root (no package.json in $ROOT)"
command -v node >/dev/null 2>&1 || die "node not found on PATH"
command -v npm  >/dev/null 2>&1 || die "npm not found on PATH"

# npm flags shared by install/uninstall: never touch package.json/lockfile,
# never run lifecycle scripts (tfjs-node's would try to download), stay quiet.
NPM_FLAGS=(--no-save --ignore-scripts --no-audit --no-fund)

# ----------------------------------------------------------------------------
# Verification: the native backend is active and a conv2d gradient matches the
# pure-JS cpu backend. Prints the TensorFlow version the addon is running.
# ----------------------------------------------------------------------------
verify() {
  log "verifying: import('$PKG_NAME'), backend, conv2d gradient vs cpu backend"
  (cd "$ROOT" && TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" node --input-type=module -e "
    const m = await import('@tensorflow/tfjs-node');
    const tf = m.default ?? m;
    await tf.ready();
    const backend = tf.getBackend();
    if (backend !== 'tensorflow') throw new Error('backend is ' + backend + ', expected tensorflow');
    const gradOf = () => tf.tidy(() => {
      const x = tf.randomUniform([2, 12, 12, 3], -1, 1, 'float32', 1);
      const w = tf.randomUniform([5, 5, 3, 4], -1, 1, 'float32', 2);
      const g = tf.grad((f) => tf.conv2d(x, f, 2, 'same').square().sum())(w);
      return g.dataSync();
    });
    const gTf = gradOf();
    tf.env().set('PROD', true);  // mutes the cpu backend's 'install tfjs-node' banner
    await tf.setBackend('cpu');
    const gCpu = gradOf();
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < gTf.length; i++) {
      if (!Number.isFinite(gTf[i])) throw new Error('non-finite gradient');
      maxDiff = Math.max(maxDiff, Math.abs(gTf[i] - gCpu[i]));
      maxAbs = Math.max(maxAbs, Math.abs(gCpu[i]));
    }
    if (!(maxDiff <= 1e-3 * Math.max(1, maxAbs))) throw new Error('gradient mismatch vs cpu: ' + maxDiff);
    await tf.setBackend('tensorflow');
    console.log('backend=' + backend +
      ' TensorFlow=' + tf.backend().binding.TF_Version +
      ' tfjs-node=' + tf.version['tfjs-node'] + ' tfjs-core=' + tf.version['tfjs-core'] +
      ' conv2d-grad: ' + gTf.length + ' values, max |tensorflow - cpu| = ' + maxDiff.toExponential(2));
  ")
}

# ----------------------------------------------------------------------------
# --uninstall
# ----------------------------------------------------------------------------
if [[ "$MODE" == "uninstall" ]]; then
  if [[ -d "$PKG_DIR" ]]; then
    log "removing $PKG_NAME from node_modules (package.json/lockfile untouched)"
    (cd "$ROOT" && npm uninstall "${NPM_FLAGS[@]}" "$PKG_NAME")
    # npm leaves the directory if it holds files it did not install (deps/, build/).
    rm -rf "$PKG_DIR"
  else
    log "$PKG_NAME is not installed; nothing to remove"
  fi
  if [[ "$PURGE" == 1 ]]; then
    log "removing cached wheel dir $WHEEL_DIR"
    rm -rf "$WHEEL_DIR"
  else
    log "cached wheel kept in $WHEEL_DIR (add --purge to delete it)"
  fi
  log "done"
  exit 0
fi

if [[ "$MODE" == "verify" ]]; then
  [[ -d "$PKG_DIR" ]] || die "$PKG_NAME is not installed; run without --verify first"
  verify
  exit 0
fi

# ----------------------------------------------------------------------------
# Preflight: decide what has to be done and check its tools BEFORE changing
# anything, so a missing tool fails with a one-line reason and no half state.
# ----------------------------------------------------------------------------
t_start=$SECONDS

tfjs_pkg="$ROOT/node_modules/@tensorflow/tfjs/package.json"
[[ -f "$tfjs_pkg" ]] || die "@tensorflow/tfjs is not installed in node_modules; run 'npm install' first"
tfjs_version="$(node -p "require('$tfjs_pkg').version")"
[[ "$tfjs_version" == "$TFJS_NODE_VERSION" ]] ||
  die "project has @tensorflow/tfjs $tfjs_version but tfjs-node $TFJS_NODE_VERSION needs exactly $TFJS_NODE_VERSION (it would pull a second tfjs-core)"

installed_version=""
if [[ -f "$PKG_DIR/package.json" ]]; then
  installed_version="$(node -p "require('$PKG_DIR/package.json').version")"
fi

find_wheel() { compgen -G "$WHEEL_DIR/$TF_WHEEL_GLOB" | head -n 1 || true; }
WHEEL="$(find_wheel)"

# Python: used by pip and by node-gyp (gyp is Python).
PYTHON="$(command -v python3 || true)"
[[ -n "$PYTHON" ]] || die "python3 not found (needed by pip and node-gyp)"

if [[ -z "$WHEEL" ]]; then
  "$PYTHON" -m pip --version >/dev/null 2>&1 ||
    die "pip is missing (python3 -m pip failed); install it (e.g. apt-get install python3-pip) or put $TF_WHEEL_GLOB into $WHEEL_DIR"
fi

# The addon is always compiled unless an existing build verifies fine, so the
# compiler is checked up front.
CXX_BIN="${CXX:-}"
if [[ -z "$CXX_BIN" ]]; then CXX_BIN="$(command -v g++ || command -v c++ || command -v clang++ || true)"; fi
if [[ -z "$CXX_BIN" ]] || ! command -v "$CXX_BIN" >/dev/null 2>&1; then
  die "no C++ compiler found (g++/c++/clang++ or \$CXX); install one, e.g. apt-get install g++ make"
fi
command -v make >/dev/null 2>&1 || die "make not found; install it, e.g. apt-get install make"

# Node headers for node-gyp. Without them node-gyp would try to download them.
# npm's `nodedir` user config is honoured; otherwise Node's own install prefix.
NODEDIR="${npm_config_nodedir:-}"
if [[ -z "$NODEDIR" ]]; then
  NODEDIR="$(npm config get nodedir 2>/dev/null || true)"
  [[ "$NODEDIR" == "undefined" || "$NODEDIR" == "null" ]] && NODEDIR=""
fi
if [[ -z "$NODEDIR" ]]; then
  node_prefix="$(node -p "require('path').dirname(require('path').dirname(process.execPath))")"
  [[ -f "$node_prefix/include/node/node_api.h" ]] && NODEDIR="$node_prefix"
fi
[[ -n "$NODEDIR" && -f "$NODEDIR/include/node/node_api.h" ]] ||
  die "Node headers not found (no npm 'nodedir' config and no <node prefix>/include/node/node_api.h); node-gyp would need internet"

log "project root: $ROOT"
log "tools: node $(node -v), npm $(npm -v 2>/dev/null), $("$PYTHON" --version 2>&1), $CXX_BIN, nodedir=$NODEDIR"

# ----------------------------------------------------------------------------
# 1. npm: install tfjs-node without saving and without install scripts.
# ----------------------------------------------------------------------------
count_tfjs_core() {
  find "$ROOT/node_modules" -path '*/@tensorflow/tfjs-core/package.json' \
       -not -path '*/dist/*' 2>/dev/null | wc -l
}

if [[ "$installed_version" == "$TFJS_NODE_VERSION" ]]; then
  log "step 1/5: $PKG_NAME@$TFJS_NODE_VERSION already in node_modules"
else
  log "step 1/5: npm install --no-save --ignore-scripts $PKG_NAME@$TFJS_NODE_VERSION"
  (cd "$ROOT" && npm install "${NPM_FLAGS[@]}" "$PKG_NAME@$TFJS_NODE_VERSION")
  [[ -f "$PKG_DIR/package.json" ]] || die "npm did not install $PKG_NAME"
  rm -f "$STAMP"   # fresh package dir: deps/ must be (re)populated
fi
n_core="$(count_tfjs_core)"
[[ "$n_core" == 1 ]] ||
  die "expected exactly one @tensorflow/tfjs-core in node_modules, found $n_core (run with --uninstall to undo)"
log "         one shared @tensorflow/tfjs-core ($(node -p "require('$ROOT/node_modules/@tensorflow/tfjs-core/package.json').version"))"

# ----------------------------------------------------------------------------
# 2. Get the tensorflow-cpu wheel (cached in $WHEEL_DIR).
#    `pip download --no-deps` only copies the one wheel (~270 MB); a venv
#    install would unpack >1 GB plus dependencies for nothing.
# ----------------------------------------------------------------------------
if [[ -n "$WHEEL" ]]; then
  log "step 2/5: using cached wheel $WHEEL"
else
  log "step 2/5: pip download --no-deps '$TF_PIP_SPEC' -> $WHEEL_DIR"
  mkdir -p "$WHEEL_DIR"
  # --retries 0: do not spend minutes retrying indexes that are unreachable
  # offline. The C library does not depend on the Python version, so if no
  # wheel matches this interpreter, ask for a cp311/cp312 one explicitly.
  if ! "$PYTHON" -m pip download --no-deps --retries 0 --dest "$WHEEL_DIR" "$TF_PIP_SPEC"; then
    for pyv in 3.11 3.12 3.10 3.13; do
      log "         retrying for a Python $pyv wheel"
      if "$PYTHON" -m pip download --no-deps --retries 0 --only-binary=:all: \
           --python-version "$pyv" --platform manylinux_2_27_x86_64 \
           --dest "$WHEEL_DIR" "$TF_PIP_SPEC"; then break; fi
    done
  fi
  WHEEL="$(find_wheel)"
  [[ -n "$WHEEL" ]] || die "pip could not download $TF_PIP_SPEC (is the package index reachable?)"
fi

# ----------------------------------------------------------------------------
# 3. Extract only what the addon needs from the wheel (a zip) into deps/.
#    The wheel's full include/ tree is 13k files / 270 MB; the binding only
#    needs the C API headers (closure found with `g++ -MM`):
#      tensorflow/c/*.h, tensorflow/c/eager/*.h, tensorflow/core/platform/ctstring*.h,
#      tsl/platform/ctstring*.h, xla/tsl/c/*.h
# ----------------------------------------------------------------------------
wheel_id="$(basename "$WHEEL") $(stat -c %s "$WHEEL")"
if [[ "$FORCE" == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$wheel_id" \
      && -f "$DEPS_DIR/lib/libtensorflow_cc.so.2" ]]; then
  log "step 3/5: deps/ already extracted from $(basename "$WHEEL")"
else
  log "step 3/5: extracting libtensorflow_cc.so.2, libtensorflow_framework.so.2 and C headers"
  rm -rf "$DEPS_DIR"
  mkdir -p "$DEPS_DIR/lib" "$DEPS_DIR/include"
  "$PYTHON" - "$WHEEL" "$DEPS_DIR" <<'PY'
import os, re, shutil, sys, zipfile
wheel, deps = sys.argv[1], sys.argv[2]
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
inc = re.compile(r"^tensorflow/include/("
                 r"tensorflow/c/[^/]+\.h|tensorflow/c/eager/[^/]+\.h|"
                 r"tensorflow/core/platform/ctstring[^/]*\.h|"
                 r"tsl/platform/ctstring[^/]*\.h|xla/tsl/c/[^/]+\.h)$")
n_inc = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name in libs:
            dest = os.path.join(deps, "lib", os.path.basename(name))
        else:
            m = inc.match(name)
            if not m:
                continue
            dest = os.path.join(deps, "include", m.group(1))
            n_inc += 1
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest + ".part", "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(dest + ".part", dest)
        if name in libs:
            os.chmod(dest, 0o755)
            libs.discard(name)
if libs:
    sys.exit("wheel lacks " + ", ".join(sorted(libs)))
print(f"[build-tfjs-node]          extracted 2 libraries and {n_inc} headers")
PY
  for h in tensorflow/c/c_api.h tensorflow/c/eager/c_api.h tensorflow/core/platform/ctstring_internal.h; do
    [[ -f "$DEPS_DIR/include/$h" ]] || die "header $h missing from the wheel"
  done
  printf '%s\n' "$wheel_id" > "$STAMP"
  rm -rf "$PKG_DIR/build" "$PKG_DIR"/lib/napi-v*   # force an addon rebuild
fi

# ----------------------------------------------------------------------------
# 4. Link names expected by tfjs-node 4.22.0 (all relative symlinks in deps/lib):
#      libtensorflow.so, .so.2, .so.2.9.1    -> libtensorflow_cc.so.2
#      libtensorflow_framework.so, .so.2.9.1 -> libtensorflow_framework.so.2
#    The linker resolves -ltensorflow through libtensorflow.so but records the
#    SONAME (libtensorflow_cc.so.2) as the addon's dependency.
# ----------------------------------------------------------------------------
log "step 4/5: creating libtensorflow*.so link names in deps/lib"
(
  cd "$DEPS_DIR/lib"
  for n in libtensorflow.so libtensorflow.so.2 "libtensorflow.so.$LIBTF_LEGACY_VERSION"; do
    ln -sfn libtensorflow_cc.so.2 "$n"
  done
  for n in libtensorflow_framework.so "libtensorflow_framework.so.$LIBTF_LEGACY_VERSION"; do
    ln -sfn libtensorflow_framework.so.2 "$n"
  done
)

# ----------------------------------------------------------------------------
# 5. Compile the N-API addon. This is the package's own "build-addon-from-source"
#    script (node-pre-gyp install --build-from-source), run directly so the
#    compiler output is shown; it never tries to download the prebuilt addon
#    (scripts/install.js would, with --fallback-to-build, and hides the output).
#    npm 11's allowScripts / --ignore-scripts do not matter: we run it ourselves
#    and check the resulting file.
# ----------------------------------------------------------------------------
addon_file() { compgen -G "$PKG_DIR/lib/napi-v*/tfjs_binding.node" | head -n 1 || true; }

build_addon() {
  log "step 5/5: compiling the tfjs-node addon with node-gyp (~10-45 s)"
  rm -rf "$PKG_DIR/build" "$PKG_DIR"/lib/napi-v*
  (
    cd "$PKG_DIR"
    export PATH="$ROOT/node_modules/.bin:$PATH"
    export npm_config_nodedir="$NODEDIR"   # node-gyp: use local Node headers
    export npm_config_python="$PYTHON"
    export CXX="$CXX_BIN"
    t0=$SECONDS
    node-pre-gyp install --build-from-source
    echo "[build-tfjs-node]          addon compiled in $((SECONDS - t0)) s"
  ) || die "addon build failed (see the node-gyp output above)"
  [[ -n "$(addon_file)" ]] || die "build finished but lib/napi-v*/tfjs_binding.node is missing"
}

if [[ "$FORCE" == 1 || -z "$(addon_file)" ]]; then
  build_addon
  built_now=1
else
  existing="$(addon_file)"
  log "step 5/5: addon already built: ${existing#"$ROOT"/}"
  built_now=0
fi

# ----------------------------------------------------------------------------
# Verify; if an old build does not work (e.g. Node was upgraded), rebuild once.
# ----------------------------------------------------------------------------
if ! verify; then
  [[ "$built_now" == 1 ]] && die "verification failed after a fresh build"
  log "existing addon failed verification; rebuilding"
  build_addon
  verify || die "verification failed after rebuilding the addon"
fi

log "done in $((SECONDS - t_start)) s; $(du -sh "$PKG_DIR" | cut -f1) in ${PKG_DIR#"$ROOT"/}, wheel cache $(du -sh "$WHEEL_DIR" 2>/dev/null | cut -f1) in ${WHEEL_DIR#"$ROOT"/}"
log "use it with: import * as tf from '@tensorflow/tfjs-node'  (backend 'tensorflow'; no LD_LIBRARY_PATH needed)"
