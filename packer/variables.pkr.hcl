# Input variables. scripts/build.ts writes every value from the validated project config
# (scripts/lib/config.ts); nothing here is meant to be set by hand.
# Validations that call functions are marked modern-only: Packer 1.6 fails them even for valid
# values, and the config schema enforces the same rules before Packer starts.

variable "repo_root" {
  type        = string
  description = "Absolute path of the repository (provisioner scripts and the rootfs tree live there)."
}

variable "image_name" {
  type        = string
  description = "Image name prefix (config image.name)."
  # packer-compat: modern-only begin
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,62}$", var.image_name))
    error_message = "The image_name must be 3-63 lower-case letters, digits or dashes."
  }
  # packer-compat: modern-only end
}

variable "image_version" {
  type        = string
  description = "Semantic version of the image (config image.version)."
  # packer-compat: modern-only begin
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$", var.image_version))
    error_message = "The image_version must be a semantic version such as 1.2.3."
  }
  # packer-compat: modern-only end
}

variable "build_id" {
  type        = string
  description = "Unique id of this build (UTC timestamp); names the AMI and tags every resource."
}

variable "build_time" {
  type        = string
  description = "Build start time, ISO 8601 UTC."
}

variable "git_sha" {
  type        = string
  description = "Commit of the repository the image was built from."
}

variable "disk_gib" {
  type        = number
  description = "Root disk size in GiB (config image.disk_gib)."
  validation {
    condition     = var.disk_gib >= 4 && var.disk_gib <= 1024
    error_message = "The disk_gib must be between 4 and 1024."
  }
}

variable "ssh_username" {
  type        = string
  description = "Login user, the same in every version of the image (config ssh.user)."
  default     = "admin"
}

variable "provisioner_env" {
  type        = map(list(string))
  description = "Per provisioner script (file name), its KEY=value environment derived from the config: each script gets only what it reads."
}

variable "agent_ref" {
  type        = string
  description = "Agent image reference recorded in the lock file (name@digest on aws, the test double locally)."
}

variable "agent_digest" {
  type        = string
  description = "Digest the agent image is pinned to (sha256:...)."
  # packer-compat: modern-only begin
  validation {
    condition     = can(regex("^sha256:[a-f0-9]{64}$", var.agent_digest))
    error_message = "The agent_digest must be sha256:<64 hex digits>."
  }
  # packer-compat: modern-only end
}

variable "agent_archive" {
  type        = string
  description = "Local target only: docker-archive of the agent test double to preload."
  default     = ""
}

variable "firstboot_dir" {
  type        = string
  description = "Directory holding the first-boot service bundle and its units."
}

variable "hardening_dir" {
  type        = string
  description = "Staged hardening files: apply.sh (rendered CIS catalog) and probe.sh (compliance facts)."
}

variable "manifest_dir" {
  type        = string
  description = "Where the build writes its outputs (Packer manifest, package list)."
}

# ---- local target (qemu) ----

variable "qemu_base_disk" {
  type        = string
  description = "Path of the cached local base disk (qcow2)."
  default     = ""
}

variable "qemu_base_disk_sha256" {
  type        = string
  description = "sha256 of the base disk, checked by Packer before booting it."
  default     = ""
}

variable "qemu_accelerator" {
  type        = string
  description = "kvm or tcg, resolved from config local.accelerator (auto probes KVM)."
  default     = "tcg"
  # packer-compat: modern-only begin
  validation {
    condition     = contains(["kvm", "tcg"], var.qemu_accelerator)
    error_message = "The qemu_accelerator must be kvm or tcg."
  }
  # packer-compat: modern-only end
}

variable "qemu_cpus" {
  type        = number
  description = "vCPUs of the build VM."
  default     = 2
}

variable "qemu_memory_mib" {
  type        = number
  description = "Memory of the build VM in MiB."
  default     = 2048
}

variable "qemu_netdev" {
  type        = string
  description = "QEMU -netdev value: user networking with the IMDS double forwarded and Packer's SSH port."
  default     = ""
}

variable "qemu_smbios" {
  type        = string
  description = "QEMU -smbios value that makes cloud-init see an EC2 instance."
  default     = ""
}

variable "qemu_serial_log" {
  type        = string
  description = "File receiving the build VM's serial console."
  default     = "/dev/null"
}

variable "qemu_layer_disk" {
  type        = string
  description = "Path of the hardened layer (qcow2) qemu.local boots: qemu.layer's output, cached by key."
  default     = ""
}

variable "qemu_layer_disk_sha256" {
  type        = string
  description = "sha256 of the hardened layer, checked by Packer before booting it."
  default     = ""
}

variable "qemu_layer_output_directory" {
  type        = string
  description = "Directory qemu.layer writes the hardened layer into (must not exist)."
  default     = ""
}

variable "qemu_output_directory" {
  type        = string
  description = "Directory Packer writes the qcow2 into (must not exist)."
  default     = ""
}

variable "qemu_ssh_private_key_file" {
  type        = string
  description = "Throwaway private key of this build; its public half is served by the IMDS double."
  default     = ""
}

variable "qemu_ssh_timeout" {
  type        = string
  description = "How long Packer waits for SSH on the build VM."
  default     = "20m"
}

variable "qemu_headless" {
  type        = bool
  description = "Run QEMU without a display window."
  default     = true
}

# ---- aws target (amazon-ebs) ----

variable "aws_region" {
  type        = string
  description = "Region the AMI is built in."
  default     = "us-east-1"
}

variable "aws_instance_type" {
  type        = string
  description = "Instance type of the build instance."
  default     = "t3.small"
}

variable "aws_source_ami_owner" {
  type        = string
  description = "Owner of the source AMI (Debian's official account)."
  default     = "136693071363"
}

variable "aws_source_ami_name" {
  type        = string
  description = "Name filter of the source AMI."
  default     = "debian-13-amd64-*"
}

variable "aws_root_volume_type" {
  type        = string
  description = "EBS volume type of the root volume."
  default     = "gp3"
}

variable "aws_encrypt_boot" {
  type        = bool
  description = "Encrypt the AMI's snapshot. Off by default: Marketplace rejects encrypted snapshots."
  default     = false
}

variable "aws_kms_key_id" {
  type        = string
  description = "KMS key for aws_encrypt_boot; empty uses the default EBS key."
  default     = ""
}

variable "aws_ami_regions" {
  type        = list(string)
  description = "Regions the AMI is copied to after the build."
  default     = []
}

variable "aws_ami_users" {
  type        = list(string)
  description = "Account IDs given launch permission."
  default     = []
}

variable "aws_subnet_id" {
  type        = string
  description = "Subnet of the build instance; empty lets Packer pick the default VPC."
  default     = ""
}

variable "aws_ssh_keypair_name" {
  type        = string
  description = "Packer 1.6.6 only: an ed25519 key pair the build imported (Debian 13 refuses the ssh-rsa signatures of Packer's temporary RSA key). Empty: Packer makes a temporary ed25519 key pair."
  default     = ""
}

variable "aws_ssh_private_key_file" {
  type        = string
  description = "Private key of aws_ssh_keypair_name."
  default     = ""
}

variable "aws_ssh_source_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the build instance's SSH; empty means this builder's public address only."
  default     = []
}

variable "aws_ec2_endpoint" {
  type        = string
  description = "EC2 API endpoint; empty uses AWS's regional endpoint. scripts/build.ts passes the SDK's own setting (AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL), so Packer and the pipeline's SDK calls reach the same EC2."
  default     = ""
}

variable "aws_ssh_host" {
  type        = string
  description = "Where Packer reaches the build instance's SSH; empty: the instance's address (Packer's default)."
  default     = ""
}

variable "aws_ssh_port" {
  type        = number
  description = "SSH port of the build instance as Packer reaches it."
  default     = 22
}

variable "aws_ssh_timeout" {
  type        = string
  description = "How long Packer waits for the build instance's SSH."
  default     = "10m"
}

variable "keys_dir" {
  type        = string
  description = "Signing keys the provisioners verify downloads with (staged by scripts/build.ts from packer/keys or aws.ssm_agent_key_file)."
}
