// The SSH key Packer logs in to the aws build instance with. Debian 13's OpenSSH refuses
// `ssh-rsa` (SHA-1) signatures, which Packer before 1.8.1 makes with its temporary RSA key, so no
// RSA key is ever used: modern Packer creates an ed25519 temporary key pair itself
// (`temporary_key_pair_type`, packer/sources.pkr.hcl); for Packer 1.6.6 the build makes an
// ed25519 key here, imports it (EC2 ImportKeyPair accepts ed25519) tagged as this build's, hands
// it to Packer (`ssh_keypair_name`, `ssh_private_key_file`) and deletes it afterwards.
import { DeleteKeyPairCommand, EC2Client, ImportKeyPairCommand } from '@aws-sdk/client-ec2';
import { awsCall } from '../aws-call.ts';

export interface BuildKey {
  name: string;
  privateKeyFile: string;
  /** Deletes the imported key pair; safe to call twice. */
  remove(): Promise<void>;
}

export async function importBuildKey(
  region: string,
  buildId: string,
  key: { privateKey: string; publicKey: string },
  ec2: EC2Client = new EC2Client({ region }),
): Promise<BuildKey> {
  if (!key.publicKey.startsWith('ssh-ed25519 ')) throw new Error('the build key must be ed25519 (Debian 13 refuses ssh-rsa signatures)');
  const name = `syntropy-build-${buildId}`;
  await awsCall(region, 'EC2 ImportKeyPair', () =>
    ec2.send(
      new ImportKeyPairCommand({
        KeyName: name,
        PublicKeyMaterial: Buffer.from(key.publicKey),
        TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'syntropy:role', Value: 'packer-builder' }, { Key: 'syntropy:build-id', Value: buildId }] }],
      }),
    ),
  );
  let removed = false;
  return {
    name,
    privateKeyFile: key.privateKey,
    remove: async () => {
      if (removed) return;
      removed = true;
      await awsCall(region, 'EC2 DeleteKeyPair', () => ec2.send(new DeleteKeyPairCommand({ KeyName: name })));
    },
  };
}
