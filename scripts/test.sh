#!/usr/bin/env bash
# The whole test suite: unit tests, kernel tests (BPF_PROG_TEST_RUN) and
# end-to-end tests of the built binary in private bpffs mounts and network
# namespaces. Needs root for the privileged tests; under CI=true a test that
# cannot get its privileges fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
# The end-to-end tests run the binary, so build it first, with the crash
# points of the fault-injection tests (a release build has none). Built
# with every target of the workspace, as `cargo test` builds them: the
# same features for every dependency, so the test build that follows
# compiles nothing again (built alone, the binary's dependencies have
# other features, and half of them were compiled twice: 45 s of CI).
cargo build --locked --workspace --all-targets --features xdpctl/failpoints
cargo test --locked --workspace --no-fail-fast --features xdpctl/failpoints "$@"
