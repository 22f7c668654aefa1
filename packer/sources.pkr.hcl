# The two targets. Both run the same provisioner list (build.pkr.hcl).

# Local: the project's own Debian 13 base disk under QEMU. The guest's 169.254.169.254:80 is
# forwarded to the IMDS double on loopback (qemu_netdev), so nothing leaves the machine. The
# build block names two guests of this source: qemu.layer (base disk -> cached hardened layer)
# and qemu.local (that layer -> the image); each sets the disk it boots and where it writes.
source "qemu" "guest" {
  disk_image       = true
  use_backing_file = false
  disk_size        = "${var.disk_gib}G"
  format           = "qcow2"
  disk_interface   = "virtio"
  # Trimmed blocks become holes, so the final conversion leaves freed space out of the qcow2.
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  net_device         = "virtio-net"
  accelerator        = "none"
  cpus               = var.qemu_cpus
  memory             = var.qemu_memory_mib
  headless           = var.qemu_headless
  qemuargs = concat([
    ["-netdev", var.qemu_netdev],
    ["-smbios", var.qemu_smbios],
    ["-serial", "file:${var.qemu_serial_log}"],
  ], local.qemu_accel_args)

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.qemu_ssh_private_key_file
  ssh_timeout          = var.qemu_ssh_timeout
  shutdown_timeout     = "5m"
}

# AWS: Debian's official Debian 13 AMI, found by filter.
source "amazon-ebs" "aws" {
  region        = var.aws_region
  instance_type = var.aws_instance_type
  subnet_id     = var.aws_subnet_id
  # An EC2 endpoint other than AWS's own (the rehearsal's emulator, a VPC endpoint): STS is not
  # redirected with it, so Packer's credential check through STS is skipped then.
  custom_endpoint_ec2        = var.aws_ec2_endpoint
  skip_credential_validation = var.aws_ec2_endpoint != ""
  source_ami_filter {
    filters = {
      name                = var.aws_source_ami_name
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
      state               = "available"
    }
    owners      = [var.aws_source_ami_owner]
    most_recent = true
  }
  ssh_username = var.ssh_username
  ssh_host     = var.aws_ssh_host
  ssh_port     = var.aws_ssh_port
  ssh_timeout  = var.aws_ssh_timeout
  # Never an RSA key: Debian 13's OpenSSH refuses ssh-rsa (SHA-1) signatures (scripts/lib/bake/build-key.ts).
  ssh_keypair_name     = var.aws_ssh_keypair_name
  ssh_private_key_file = var.aws_ssh_private_key_file

  ami_name                = local.image_full_name
  ami_description         = "Syntropy agent appliance ${var.image_version} on CIS-hardened Debian 13 (${var.git_sha})"
  ami_virtualization_type = "hvm"
  ena_support             = true
  sriov_support           = true
  encrypt_boot            = var.aws_encrypt_boot
  kms_key_id              = var.aws_kms_key_id
  ami_regions             = var.aws_ami_regions
  ami_users               = var.aws_ami_users

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.disk_gib
    volume_type           = var.aws_root_volume_type
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  temporary_security_group_source_cidrs = var.aws_ssh_source_cidrs
  # A build instance left behind by a crashed Packer terminates itself when it shuts down.
  shutdown_behavior = "terminate"
  # Copies to other regions and large snapshots outlast the SDK's default waiter (~10 min).
  aws_polling {
    delay_seconds = 15
    max_attempts  = 240
  }

  # packer-compat: modern-only begin
  # Packer 1.6's built-in amazon-ebs lacks these; scripts/build.ts strips this span for it and
  # compensates (IMDSv2-only set on the AMI through the EC2 API, SSH CIDRs required in config).
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  temporary_security_group_source_public_ip = length(var.aws_ssh_source_cidrs) == 0
  temporary_key_pair_type                   = "ed25519"
  # The AMI keeps `tags` only, not the builder's run tags (syntropy:role=packer-builder).
  skip_ami_run_tags = true
  # AMIs are deprecated (hidden from new launches by default, never deleted) after two years.
  deprecate_at = timeadd(timestamp(), "17520h")
  # packer-compat: modern-only end

  tags            = local.image_tags
  snapshot_tags   = local.image_tags
  run_tags        = merge(local.image_tags, { "syntropy:role" = "packer-builder" })
  run_volume_tags = local.image_tags
}
