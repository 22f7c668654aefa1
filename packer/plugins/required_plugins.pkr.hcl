# Staged into the template directory by scripts/build.ts only for Packer >= 1.7, which needs
# its builders as plugins (`packer init`). Packer 1.6 has both builders built in.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = "~> 1.3"
      source  = "github.com/hashicorp/amazon"
    }
    qemu = {
      version = "~> 1.1"
      source  = "github.com/hashicorp/qemu"
    }
  }
}
