#!/usr/bin/env bash
# Attaches a release's SBOM and manifests to its GitHub release (release workflow, `attach` job).
# usage: scripts/attach-release-assets.sh <tag> <folder with the release-manifests artifact>
# Needs the gh CLI with GH_TOKEN (contents: write) and GH_REPO. The files are renamed after the
# tag (sbom.cdx.json -> <tag>.sbom.cdx.json, ...) so releases do not collide; the build folder is
# the one named by a build ID (the artifact may also hold `latest`, a copy of the same build).
set -euo pipefail

tag=${1:?usage: attach-release-assets.sh <tag> <artifact folder>}
src=${2:?usage: attach-release-assets.sh <tag> <artifact folder>}

build=""
for d in "$src"/*/; do
  name=$(basename "$d")
  if [[ $name =~ ^[0-9]{8}T[0-9]{6}Z$ && -f $d/build-manifest.json ]]; then
    if [[ -n $build ]]; then
      echo "attach-release-assets: more than one build in $src ($build, $name)" >&2
      exit 1
    fi
    build=$d
  fi
done
if [[ -z $build ]]; then
  echo "attach-release-assets: no build folder (<build ID>/build-manifest.json) in $src" >&2
  exit 1
fi
if [[ ! -f $build/sbom.cdx.json ]]; then
  echo "attach-release-assets: $build has no sbom.cdx.json: the bake writes one; refusing to release without it" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for f in sbom.cdx.json build-manifest.json publish-manifest.json; do
  if [[ -f $build/$f ]]; then cp "$build/$f" "$stage/$tag.$f"; fi
done
# The names are taken before the sums file exists: in a pipeline, the glob on the left and the
# redirection on the right run at the same time, so the sums could list themselves (empty).
assets=("$stage"/*)
sums=$(cd "$stage" && sha256sum "${assets[@]##*/}")
printf '%s\n' "$sums" >"$stage/$tag.SHA256SUMS"

if ! gh release view "$tag" >/dev/null 2>&1; then
  gh release create "$tag" --verify-tag --title "$tag" --notes "AMI build $(basename "$build"). The SBOM (CycloneDX) lists every package in the image; its sha256 is also the AMI's syntropy:sbom-sha256 tag."
fi
gh release upload "$tag" "$stage"/* --clobber
echo "attached to $tag: $(cd "$stage" && echo *)"
