#!/bin/sh
# Regenerates tests/data/rpm/sqlite-demo/root/usr/lib/sysimage/rpm/rpmdb.sqlite and the
# rpm-qa.tsv / rpm-ql.tsv oracles beside it (expected.json is checked against them by the tests).
# Needs rpm and rpmbuild (Debian: apt-get install rpm). For humans; the tests use the committed files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/SOURCES" "$work/SPECS" "$work/db"

# demo: a plain package with a bundled Python dist-info and a -libs subpackage (same source rpm).
cat > "$work/SPECS/demo.spec" <<'SPEC'
Name:           demo
Version:        1.2.3
Release:        4.el9
Summary:        patchline rpm fixture
License:        MIT AND (Apache-2.0 OR BSD-3-Clause)
BuildArch:      x86_64
AutoReqProv:    no
%description
Fixture package.
%package libs
Summary: libraries of demo
License: LGPL-2.1-or-later
%description libs
Fixture subpackage.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/python3.11/site-packages/foo-1.0.dist-info %{buildroot}/usr/lib64
printf '#!/bin/sh\necho demo\n' > %{buildroot}/usr/bin/demo
printf 'Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n' > %{buildroot}/usr/lib/python3.11/site-packages/foo-1.0.dist-info/METADATA
printf 'foo\n' > %{buildroot}/usr/lib/python3.11/site-packages/foo-1.0.dist-info/top_level.txt
printf 'lib\n' > %{buildroot}/usr/lib64/libdemo.so.1
%files
/usr/bin/demo
/usr/lib/python3.11/site-packages/foo-1.0.dist-info
%files libs
/usr/lib64/libdemo.so.1
SPEC

# epochal: an epoch, noarch, a bundled node module and an old-style egg-info file.
cat > "$work/SPECS/epochal.spec" <<'SPEC'
Name:           epochal
Epoch:          2
Version:        0.9
Release:        1
Summary:        patchline rpm fixture with an epoch
License:        GPL-2.0-only
BuildArch:      noarch
AutoReqProv:    no
%description
Fixture package.
%install
mkdir -p %{buildroot}/usr/lib/node_modules/left-pad %{buildroot}/usr/lib/python3.11/site-packages
printf '{"name": "left-pad", "version": "1.3.0"}\n' > %{buildroot}/usr/lib/node_modules/left-pad/package.json
printf 'Metadata-Version: 1.0\nName: oldegg\nVersion: 0.1\n' > %{buildroot}/usr/lib/python3.11/site-packages/oldegg-0.1-py3.11.egg-info
%files
/usr/lib/node_modules/left-pad
/usr/lib/python3.11/site-packages/oldegg-0.1-py3.11.egg-info
SPEC

for spec in demo epochal; do
    rpmbuild --quiet --define "_topdir $work" --define '_build_id_links none' \
        --define 'source_date_epoch_from_changelog 0' -bb "$work/SPECS/$spec.spec"
done

rpm --dbpath "$work/db" --define '_db_backend sqlite' --initdb
rpm --dbpath "$work/db" --define '_db_backend sqlite' --justdb --nodeps --noscripts -i \
    "$work"/RPMS/*/*.rpm 2>&1 | grep -v 'use Alien\|know what you are doing' || true
# A real gpg-pubkey pseudo-package, as every signed distribution has; the cataloger skips it.
mkdir -m 700 "$work/gnupg"
gpg --homedir "$work/gnupg" --batch --passphrase '' --quiet \
    --quick-gen-key 'patchline fixture <fixture@example.invalid>' rsa2048 sign never
gpg --homedir "$work/gnupg" --armor --export > "$work/key.asc"
rpm --dbpath "$work/db" --define '_db_backend sqlite' --import "$work/key.asc"
# demo, demo-libs, epochal and the key: the filter above hides rpm's exit status, so count.
test "$(rpm --dbpath "$work/db" -qa | wc -l)" -eq 4

out="$here/sqlite-demo/root/usr/lib/sysimage/rpm"
mkdir -p "$out"
# Copied as rpm left it: in WAL mode (header bytes 18-19 = 2), as in real images.
# rpm checkpoints on close, so the -wal sibling is empty and not needed.
test ! -s "$work/db/rpmdb.sqlite-wal"
cp "$work/db/rpmdb.sqlite" "$out/rpmdb.sqlite"

# The oracle: what rpm itself reports for that database.
rpm --dbpath "$work/db" -qa --queryformat \
    '%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{LICENSE}\n' \
    | sort > "$here/sqlite-demo/rpm-qa.tsv"
rpm --dbpath "$work/db" -qa --queryformat '[%{=NAME}\t%{FILENAMES}\n]' | sort > "$here/sqlite-demo/rpm-ql.tsv"
ls -l "$out/rpmdb.sqlite"
