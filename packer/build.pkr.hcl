# One build, the same provisioners for both targets. Each script is one verb (packer/provisioners/).
#
# aws runs every step on one instance. The local target runs them on two guests: qemu.layer
# boots the base disk and runs the steps up to hardening (the "hardened layer", cached by
# scripts/build.ts under a key of everything those steps depend on), qemu.local boots that
# layer and runs the rest. Steps of the first part say `except = ["qemu.local"]`, steps of the
# second `except = ["qemu.layer"]`; the order is the same everywhere.

build {
  sources = ["source.amazon-ebs.aws"]

  source "source.qemu.guest" {
    name             = "layer"
    iso_url          = var.qemu_base_disk
    iso_checksum     = "sha256:${var.qemu_base_disk_sha256}"
    vm_name          = "layer.qcow2"
    output_directory = var.qemu_layer_output_directory
    shutdown_command = "sudo systemctl poweroff"
  }

  source "source.qemu.guest" {
    name             = "local"
    iso_url          = var.qemu_layer_disk
    iso_checksum     = "sha256:${var.qemu_layer_disk_sha256}"
    vm_name          = "${var.image_name}.qcow2"
    output_directory = var.qemu_output_directory
    shutdown_command = "sudo sh -c 'truncate -s 0 /run/syntropy-build/image/var/log/sudo.log; systemctl poweroff'"
  }

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["wait-cloud-init.sh"]
    script           = "${var.repo_root}/packer/provisioners/wait-cloud-init.sh"
  }

  # Staging area for files the scripts install; sanitize.sh removes it. Run through bash, as the
  # login user (Packer uploads as that user): a hardened /tmp (the layer's) is noexec.
  provisioner "shell" {
    execute_command = "bash {{ .Path }}"
    inline          = ["mkdir -p /var/tmp/syntropy-build"]
  }

  provisioner "file" {
    sources     = ["${var.repo_root}/rootfs", "${var.repo_root}/packer/provisioners/sanitize.list", var.keys_dir, var.hardening_dir]
    destination = "/var/tmp/syntropy-build/"
  }

  # The first-boot service is installed after hardening: not part of the hardened layer.
  provisioner "file" {
    except      = ["qemu.layer"]
    sources     = [var.firstboot_dir]
    destination = "/var/tmp/syntropy-build/"
  }

  # qemu.local: check that the booted disk is the hardened layer of this build's key.
  provisioner "shell" {
    only             = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["open-layer.sh"]
    script           = "${var.repo_root}/packer/provisioners/open-layer.sh"
  }

  provisioner "shell" {
    except           = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["update-system.sh"]
    script           = "${var.repo_root}/packer/provisioners/update-system.sh"
  }

  provisioner "shell" {
    except           = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-rootfs.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-rootfs.sh"
  }

  provisioner "shell" {
    except           = ["qemu.local"]
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
    except           = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["install-node.sh"]
    script           = "${var.repo_root}/packer/provisioners/install-node.sh"
  }

  provisioner "shell" {
    except           = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["probe-compliance.sh"]
    script           = "${var.repo_root}/packer/provisioners/probe-compliance.sh"
  }

  provisioner "shell" {
    except           = ["qemu.local"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["harden.sh"]
    script           = "${var.repo_root}/packer/provisioners/harden.sh"
  }

  # qemu.layer: record the key and the baseline facts on the layer's disk (qemu.local reads them).
  provisioner "shell" {
    only             = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["save-layer.sh"]
    script           = "${var.repo_root}/packer/provisioners/save-layer.sh"
  }

  provisioner "shell" {
    except           = ["qemu.layer"]
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
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["preload-agent.sh"]
    script           = "${var.repo_root}/packer/provisioners/preload-agent.sh"
  }

  # AIDE's database, once every file the image ships is in place (hardening installed AIDE).
  provisioner "shell" {
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["init-aide.sh"]
    script           = "${var.repo_root}/packer/provisioners/init-aide.sh"
  }

  # Nothing older than the mirror offers (Marketplace: no known-vulnerable packages).
  provisioner "shell" {
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["check-updates.sh"]
    script           = "${var.repo_root}/packer/provisioners/check-updates.sh"
  }

  provisioner "shell" {
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["sanitize.sh"]
    script           = "${var.repo_root}/packer/provisioners/sanitize.sh"
  }

  provisioner "shell" {
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["collect-manifest.sh"]
    script           = "${var.repo_root}/packer/provisioners/collect-manifest.sh"
  }

  # collect-manifest.sh writes under /run, which is not part of the image.
  provisioner "file" {
    except      = ["qemu.layer"]
    direction   = "download"
    source      = "/run/syntropy-build/image-info.tar"
    destination = "${var.manifest_dir}/image-info.tar"
  }

  provisioner "shell" {
    except           = ["qemu.layer"]
    execute_command  = local.execute_command
    environment_vars = var.provisioner_env["validate.sh"]
    script           = "${var.repo_root}/packer/provisioners/validate.sh"
  }

  post-processor "manifest" {
    except     = ["qemu.layer"]
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
