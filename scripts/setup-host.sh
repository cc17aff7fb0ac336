#!/usr/bin/env bash
# Prepare a Debian 12 host for patchline's development and integration tests.
#
# Idempotent and non-interactive; a second run changes nothing and takes seconds.
#   1. apt packages: podman, buildah, skopeo, runc, docker-registry, debootstrap, postgresql, ...
#   2. a probe that `podman run` works; only where it does not, and only when there
#      is no /etc/containers/containers.conf of the user's, it writes the settings
#      the probe proves are needed (see DESIGN.md, "Host facts")
#   3. the repository's virtualenv .venv with `pip install -e '.[test]'`, every dependency at
#      the version constraints.txt pins (a new release of a dependency cannot break a fresh install)
#
# Environment:
#   PATCHLINE_SETUP_LOG        log file (default /var/log/patchline/setup-host.log as
#                              root, else ~/.cache/patchline/setup-host.log)
#   PATCHLINE_DEPS=newest      install the newest releases the version ranges of pyproject.toml allow,
#                              ignoring constraints.txt (to test an upgrade before pinning it)
#   PATCHLINE_CONTAINERS_CONF  for testing this script only: the containers.conf to
#                              check and write instead of /etc/containers/containers.conf
#                              (podman is then pointed at it with CONTAINERS_CONF)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_PACKAGES=(
    podman buildah skopeo runc docker-registry debootstrap
    zstd uidmap fuse-overlayfs ca-certificates python3-venv
    busybox-static  # the network-free probe image: one static binary
    catatonit       # podman run --init (the example tools service); only a Recommends of podman
    openssl         # certificates for the token-auth registry of the tests
    apt-utils       # apt-ftparchive, for the local apt repositories of the tests
    dpkg-dev        # dpkg-parsechangelog, the CVE oracle of the assessment tests
    rpm             # the oracle for RPM version comparison in the property tests
    gnupg           # GPG "simple signing" of images
    postgresql      # server binaries for the tests' private cluster (Debian's 15/main is not used)
    rabbitmq-server # AMQP broker binaries for the event tests' private node (the system node is not used)
    runsc           # gVisor: services with runtime = "runsc" run on its user-space kernel
    golang-1.19-go  # Go 1.19.8: the Go binaries the Go cataloger tests build
    rustc binutils  # a Rust binary given a cargo-auditable section (objcopy) for the Rust cataloger test
    unzip           # the Java cataloger test reads real jars' pom.properties with it, as an oracle
)
APT_FRESH_MINUTES=360
PROBE_IMAGE=localhost/patchline/probe:busybox
CONF=${PATCHLINE_CONTAINERS_CONF:-/etc/containers/containers.conf}
SETTING_RUNTIME=$'[engine]\nruntime = "runc"'
SETTING_ULIMITS=$'[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
    LOG=${PATCHLINE_SETUP_LOG:-/var/log/patchline/setup-host.log}
elif command -v sudo >/dev/null; then
    SUDO=(sudo --non-interactive)
    LOG=${PATCHLINE_SETUP_LOG:-$HOME/.cache/patchline/setup-host.log}
else
    echo "setup-host: run as root (sudo is not installed)" >&2
    exit 1
fi
mkdir -p "$(dirname "$LOG")"
echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) setup-host.sh ($REPO)" >>"$LOG"

CHANGES=()
START=$SECONDS

say() { echo "==> $*"; echo "==> $*" >>"$LOG"; }

die() {
    echo "setup-host: $*" >&2
    echo "FAILED: $*" >>"$LOG"
    echo "    (log: $LOG)" >&2
    exit 1
}

# Run a command with its output in the log only; on failure show the log's tail.
run() {
    echo "+ $*" >>"$LOG"
    local rc=0
    "$@" >>"$LOG" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "setup-host: failed ($rc): $*" >&2
        tail -n 25 "$LOG" | sed 's/^/    /' >&2
        echo "    (log: $LOG)" >&2
        exit "$rc"
    fi
}

# ---------------------------------------------------------------- apt packages
missing_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f '${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed \
            || echo "$pkg"
    done
}

apt_lists_fresh() {
    # Our own stamp, or apt having just renamed fresh lists into place.
    local stamp=/var/lib/apt/lists/.patchline-update-stamp
    [[ -n $(find "$stamp" /var/lib/apt/lists -maxdepth 0 -mmin -"$APT_FRESH_MINUTES" 2>/dev/null) ]]
}

install_packages() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "apt packages: all ${#APT_PACKAGES[@]} installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    if apt_lists_fresh; then
        say "apt lists are fresh (< $((APT_FRESH_MINUTES / 60)) h), skipping apt-get update"
    else
        say "apt-get update"
        run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        run "${SUDO[@]}" touch /var/lib/apt/lists/.patchline-update-stamp
    fi
    say "apt-get install ${missing[*]}"
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
    CHANGES+=("installed ${#missing[@]} apt package(s)")
}

# ------------------------------------------------------- podman run probe
podman_() {
    # PATCHLINE_CONTAINERS_CONF stands in for the system file while testing;
    # while it does not exist, podman sees no containers.conf (a fresh host).
    if [[ -n ${PATCHLINE_CONTAINERS_CONF:-} ]]; then
        local conf=/dev/null
        [[ -f $CONF ]] && conf=$CONF
        "${SUDO[@]}" env CONTAINERS_CONF="$conf" podman "$@"
    else
        "${SUDO[@]}" podman "$@"
    fi
}

ensure_probe_image() {
    if podman_ image exists "$PROBE_IMAGE"; then
        return
    fi
    say "creating the probe image $PROBE_IMAGE (busybox-static, no network)"
    local dir
    dir=$(mktemp -d)
    mkdir "$dir/bin"
    cp /bin/busybox "$dir/bin/busybox"
    ln -s busybox "$dir/bin/true"
    echo "+ tar -C $dir -c bin | podman import - $PROBE_IMAGE" >>"$LOG"
    if ! tar -C "$dir" -c bin | podman_ import --change 'CMD ["/bin/true"]' - "$PROBE_IMAGE" \
        >>"$LOG" 2>&1; then
        rm -rf "$dir"
        die "podman import of the probe image failed"
    fi
    rm -rf "$dir"
}

# probe [CONF_FILE]: does `podman run` work (with CONF_FILE as the only containers.conf)?
probe() {
    local -a env=()
    [[ $# -gt 0 ]] && env=(env CONTAINERS_CONF="$1")
    echo "+ ${env[*]} podman run --rm --network none $PROBE_IMAGE true" >>"$LOG"
    if [[ ${#env[@]} -gt 0 ]]; then
        "${SUDO[@]}" "${env[@]}" podman run --rm --network none "$PROBE_IMAGE" true >>"$LOG" 2>&1
    else
        podman_ run --rm --network none "$PROBE_IMAGE" true >>"$LOG" 2>&1
    fi
}

configure_podman() {
    ensure_probe_image
    if probe; then
        say "podman run works (probe image $PROBE_IMAGE)"
        return
    fi
    local reason
    reason=$(grep -E '^Error' "$LOG" | tail -n 1 || true)
    say "podman run fails: ${reason:-see $LOG}"

    # Find the smallest set that makes the probe pass: runtime, then ulimits, then both.
    local candidate needed="" tmp
    tmp=$(mktemp)
    for candidate in "$SETTING_RUNTIME" "$SETTING_ULIMITS" \
        "$SETTING_RUNTIME"$'\n\n'"$SETTING_ULIMITS"; do
        printf '%s\n' "$candidate" >"$tmp"
        chmod 644 "$tmp"
        if probe "$tmp"; then
            needed=$candidate
            break
        fi
    done
    rm -f "$tmp"

    if [[ -z $needed ]]; then
        die "podman run fails even with runtime = \"runc\" and default_ulimits set (see $LOG)"
    fi
    if [[ -e $CONF ]]; then
        {
            echo "setup-host: podman run fails here, and $CONF is yours, so it is left alone."
            echo "Add these lines to it, then run this script again:"
            echo
            printf '%s\n' "$needed" | sed 's/^/    /'
        } >&2
        echo "NOT WRITTEN (user file $CONF): $needed" >>"$LOG"
        exit 2
    fi
    say "writing $CONF with only what the probe needs: $(grep -v '^\[' <<<"$needed" | paste -sd ';')"
    run "${SUDO[@]}" mkdir -p "$(dirname "$CONF")"
    {
        echo "# Written by patchline scripts/setup-host.sh: plain \`podman run\` failed on this"
        echo "# host without these settings (probe: podman run --rm $PROBE_IMAGE true)."
        printf '%s\n' "$needed"
    } | "${SUDO[@]}" tee "$CONF" >/dev/null
    probe || die "podman run still fails after writing $CONF (see $LOG)"
    say "podman run works now"
    CHANGES+=("wrote $CONF")
}

# ------------------------------------------------------------- virtualenv
setup_venv() {
    local venv=$REPO/.venv py stamp want
    py=$(command -v python3) || die "python3 is not on PATH"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$py is $("$py" -V 2>&1); patchline needs Python >= 3.11"
    if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        say "creating $venv with $("$py" -V 2>&1) ($py)"
        rm -rf "$venv"
        run "$py" -m venv "$venv"
        CHANGES+=("created .venv")
    fi
    # Re-install only when pyproject.toml, constraints.txt or PATCHLINE_DEPS changed, or the package is not importable.
    stamp=$venv/.patchline-setup-stamp
    local deps=${PATCHLINE_DEPS:-pinned} pins=()
    case $deps in
        pinned) pins=(-c "$REPO/constraints.txt") ;;
        newest) pins=(--upgrade --upgrade-strategy eager) ;;
        *) die "PATCHLINE_DEPS is '$deps'; say pinned (the default) or newest" ;;
    esac
    want="$deps $(cat "$REPO/pyproject.toml" "$REPO/constraints.txt" | sha256sum | cut -d' ' -f1)"
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]] \
        && "$venv/bin/python" -c 'import patchline, pytest' 2>/dev/null; then
        say "venv: patchline[test] is installed ($venv)"
        return
    fi
    say "pip install -e '.[test]' into $venv ($deps versions)"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" -e "$REPO[test]"
    echo "$want" >"$stamp"
    CHANGES+=("installed patchline[test] into .venv")
}

install_packages
configure_podman
setup_venv

if [[ ${#CHANGES[@]} -eq 0 ]]; then
    summary="nothing to change"
else
    summary=$(IFS=';'; echo "${CHANGES[*]}" | sed 's/;/; /g')
fi
say "setup-host done in $((SECONDS - START)) s: $summary (log: $LOG)"
