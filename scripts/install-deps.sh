#!/usr/bin/env bash
# Installs the Debian packages that building and testing ibmb need. Idempotent: prints
# nothing and touches nothing when everything is already present. Run as root (or with sudo
# available) on Debian 12.
set -euo pipefail

pkgs=(cmake ninja-build g++ make pkg-config libeigen3-dev catch2 libmetis-dev zlib1g-dev libdeflate-dev
      libbenchmark-dev libcli11-dev libdlpack-dev clang-format)
# clang (for the libFuzzer targets) is optional: install it when asked.
if [[ "${IBMB_WITH_FUZZ:-0}" == 1 ]]; then pkgs+=(clang libomp-dev); fi
# matplotlib (for scripts/plot_*.py, run with /usr/bin/python3) is optional too.
if [[ "${IBMB_WITH_PLOTS:-0}" == 1 ]]; then pkgs+=(python3-matplotlib); fi
# Open MPI (for -DIBMB_ENABLE_MPI=ON: workers as MPI ranks, tests/mpi) is optional as well.
if [[ "${IBMB_WITH_MPI:-0}" == 1 ]]; then pkgs+=(libopenmpi-dev openmpi-bin); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
