# One build, two sources, the same provisioners. Each script is one verb (packer/provisioners/).

build {
  sources = ["source.qemu.local", "source.amazon-ebs.aws"]

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["wait-cloud-init.sh"]
    script           = "${var.repo_root}/packer/provisioners/wait-cloud-init.sh"
  }

  # Staging area for files the scripts install; sanitize.sh removes it.
  provisioner "shell" {
    inline = ["mkdir -p /var/tmp/syntropy-build"]
  }

  provisioner "file" {
    sources     = ["${var.repo_root}/rootfs", "${var.repo_root}/packer/provisioners/sanitize.list", var.keys_dir, var.firstboot_dir, var.hardening_dir]
    destination = "/var/tmp/syntropy-build/"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["update-system.sh"]
    script           = "${var.repo_root}/packer/provisioners/update-system.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-rootfs.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-rootfs.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-docker.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-docker.sh"
  }

  # aws only: Debian's official AMIs have no SSM Agent (the local target has none either: no SSM there).
  provisioner "shell" {
    only             = ["amazon-ebs.aws"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-ssm-agent.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-ssm-agent.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-firstboot.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-firstboot.sh"
  }

  # Local target: the agent test double, built on the host from Debian packages.
  provisioner "file" {
    only        = ["qemu.local"]
    source      = var.agent_archive
    destination = "/var/tmp/syntropy-build/agent-image.tar"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["preload-agent.sh"]
    script           = "${var.repo_root}/packer/provisioners/preload-agent.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["probe-compliance.sh"]
    script           = "${var.repo_root}/packer/provisioners/probe-compliance.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["harden.sh"]
    script           = "${var.repo_root}/packer/provisioners/harden.sh"
  }

  # Nothing older than the mirror offers (Marketplace: no known-vulnerable packages).
  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["check-updates.sh"]
    script           = "${var.repo_root}/packer/provisioners/check-updates.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["sanitize.sh"]
    script           = "${var.repo_root}/packer/provisioners/sanitize.sh"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["collect-manifest.sh"]
    script           = "${var.repo_root}/packer/provisioners/collect-manifest.sh"
  }

  # collect-manifest.sh writes under /run, which is not part of the image.
  provisioner "file" {
    direction   = "download"
    source      = "/run/syntropy-build/image-info.tar"
    destination = "${var.manifest_dir}/image-info.tar"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["validate.sh"]
    script           = "${var.repo_root}/packer/provisioners/validate.sh"
  }

  post-processor "manifest" {
    output     = "${var.manifest_dir}/packer-manifest.json"
    strip_path = false
    custom_data = {
      build_id     = var.build_id
      git_sha      = var.git_sha
      agent_ref    = var.agent_ref
      agent_digest = var.agent_digest
    }
  }
}
