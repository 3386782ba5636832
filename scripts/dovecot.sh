#!/usr/bin/env bash
# Installs Dovecot's IMAP server (Debian `dovecot-imapd`, no recommends) when it is
# missing, for clara-email's tests. It starts nothing: each test starts a private
# Dovecot of its own (crates/clara-email/tests/it/dovecot.rs) under a temporary
# directory, as the current user, on a free port of 127.0.0.1.
#
# The Debian package enables and starts the system-wide dovecot service; that
# instance is not needed by the tests, so the script stops it again when it was
# the one that installed it (and systemd or service(8) is around to ask).
set -euo pipefail

die() { echo "dovecot.sh: $*" >&2; exit 1; }

if [[ -x /usr/sbin/dovecot && -x /usr/lib/dovecot/dovecot-lda ]]; then
  echo "dovecot.sh: Dovecot $(/usr/sbin/dovecot --version) is already installed (/usr/sbin/dovecot, /usr/lib/dovecot/dovecot-lda)."
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Dovecot's IMAP server (dovecot-imapd, 2.3) with your package manager."
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run as root to install dovecot-imapd."
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# policy-rc.d keeps the package's post-install from starting the system service
# where nothing should run (containers); it is removed again afterwards.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 0755 "$policy"
  made_policy=1
fi
cleanup() { if [[ "$made_policy" == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${sudo[@]}" apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null

[[ -x /usr/sbin/dovecot ]] || die "dovecot-imapd installed, but /usr/sbin/dovecot is missing."
[[ -x /usr/lib/dovecot/dovecot-lda ]] || die "dovecot-imapd installed, but /usr/lib/dovecot/dovecot-lda is missing (it comes with dovecot-core)."
echo "dovecot.sh: installed $(dpkg-query -W -f='${Package} ${Version}, ' dovecot-core dovecot-imapd | sed 's/, $//')."
echo "dovecot.sh: Dovecot $(/usr/sbin/dovecot --version): /usr/sbin/dovecot, /usr/lib/dovecot/dovecot-lda, /usr/bin/doveadm."
