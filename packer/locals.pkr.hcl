# Values derived from the variables, shared by both sources and the build.

locals {
  image_full_name = "${var.image_name}-${var.image_version}-${var.build_id}"

  # Every image, snapshot and build instance carries these, so `npm run clean` can find them.
  image_tags = {
    Name                  = local.image_full_name
    "syntropy:image"      = var.image_name
    "syntropy:version"    = var.image_version
    "syntropy:build-id"   = var.build_id
    "syntropy:git-sha"    = var.git_sha
    "syntropy:agent-ref"  = var.agent_ref
    "syntropy:agent-dgst" = var.agent_digest
    "syntropy:built-at"   = var.build_time
  }

  # TCG: QEMU's default CPU model plus RDRAND, so the guest's random pool is ready before its second
  # vCPU starts (why: scripts/lib/guest/qemu.ts, accelArgs).
  qemu_accel_args = var.qemu_accelerator == "kvm" ? [["-accel", "kvm"], ["-cpu", "host"]] : [["-accel", "tcg,thread=multi"], ["-cpu", "qemu64,+rdrand"]]

  # Run every script as root with the config-derived environment, strict mode included.
  execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} bash -euo pipefail {{ .Path }}"
}
