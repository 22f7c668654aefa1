#!/usr/bin/env bash
# Installs AWS's SSM Agent (aws target only), pinned by version, from AWS's regional distribution,
# after checking its signature against AWS's published signing key (packer/keys/).
# Why: Debian's official AMIs ship no SSM Agent, without which the SSM document, the boot test and
# compliance over SSM cannot run on EC2 (amazon-eks-ami installs it the same way).
set -euo pipefail
: "${SSM_AGENT_VERSION:?}" "${SSM_AGENT_REGION:?}" "${SYNTROPY_STAGING:?}"
# AWS's signing key and its fingerprint, both from the repository (packer/keys/): a signature
# counts only when it is by exactly that key.
key="${SSM_AGENT_KEY_FILE:-$SYNTROPY_STAGING/keys/amazon-ssm-agent.asc}"
FINGERPRINT=$(tr -d ' \n' < "${key%.asc}.fingerprint")
[[ "$FINGERPRINT" =~ ^[0-9A-F]{40}$ ]] || { echo "install-ssm-agent: no fingerprint beside $key" >&2; exit 1; }
base="${SSM_AGENT_BASE_URL:-https://s3.${SSM_AGENT_REGION}.amazonaws.com/amazon-ssm-${SSM_AGENT_REGION}}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -fsSL --retry 5 -o "$work/amazon-ssm-agent.deb" "$base/$SSM_AGENT_VERSION/debian_amd64/amazon-ssm-agent.deb"
curl -fsSL --retry 5 -o "$work/amazon-ssm-agent.deb.sig" "$base/$SSM_AGENT_VERSION/debian_amd64/amazon-ssm-agent.deb.sig"

# Debian 13 has neither gpg nor gpgv: its apt verifies with Sequoia's sqv (apt Depends: sqv), so
# sqv is on every Debian 13 system, Debian's official AMI included, and nothing is installed for
# this. sqv trusts every certificate in the keyring it is given: only the pinned key goes in, and
# it must print the pinned fingerprint. sqv judges a signature by the key's validity when the
# signature was made, so AWS's key, whose expiry AWS extends from time to time, is accepted for
# packages it signed while valid even when the copy here has passed its expiry date.
# The positional form (SIG FILE) is the one both sqv 1.1 (Debian 12) and 1.3 (Debian 13) accept.
status=$(sqv --keyring "$key" "$work/amazon-ssm-agent.deb.sig" "$work/amazon-ssm-agent.deb" 2>/dev/null || true)
grep -qx -- "$FINGERPRINT" <<< "$status" \
  || { echo "install-ssm-agent: the signature of amazon-ssm-agent $SSM_AGENT_VERSION does not verify with AWS's key $FINGERPRINT" >&2; exit 1; }
got=$(dpkg-deb -f "$work/amazon-ssm-agent.deb" Version)
[[ "$got" == "$SSM_AGENT_VERSION"* ]] \
  || { echo "install-ssm-agent: the package is version $got, pinned $SSM_AGENT_VERSION" >&2; exit 1; }

dpkg -i "$work/amazon-ssm-agent.deb"
# Enabled for the instances; not running during the bake, so the build instance does not
# register (sanitize.list removes any registration state anyway).
systemctl enable amazon-ssm-agent.service
systemctl stop amazon-ssm-agent.service
echo "install-ssm-agent: amazon-ssm-agent $got installed, signature by $FINGERPRINT"
