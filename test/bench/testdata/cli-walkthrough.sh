#!/usr/bin/env bash
# The documented BYOK walkthrough, one key at a time, with the AWS CLI and
# openssl: what users run today instead of keyferry. `make bench` times it
# against the sandbox's KMS emulator (AWS_ENDPOINT_URL_KMS and credentials
# come from the environment).
#
#   cli-walkthrough.sh COUNT PREFIX WRAPPING_KEY_SPEC WORKDIR
#
# For each key i in 1..COUNT: create-key --origin EXTERNAL,
# get-parameters-for-import (RSAES_OAEP_SHA_1, what SoftHSM offers), openssl pkeyutl wraps 32
# bytes of key material, import-key-material, then create-alias (or
# update-alias when the alias exists). Unlike keyferry, the material exists
# in plaintext on this disk (openssl rand stands in for an HSM export).
set -euo pipefail
count=${1:?count} prefix=${2:?prefix} wks=${3:-RSA_4096} work=${4:?workdir}
mkdir -p "$work"
umask 077
for i in $(seq 1 "$count"); do
  d="$work/$i"; mkdir -p "$d"
  key=$(aws kms create-key --origin EXTERNAL --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
        --description "cli walkthrough $prefix-$i" --query KeyMetadata.KeyId --output text)
  aws kms get-parameters-for-import --key-id "$key" --wrapping-algorithm RSAES_OAEP_SHA_1 \
      --wrapping-key-spec "$wks" --output json > "$d/params.json"
  python3 -c 'import json,sys,base64; p=json.load(open(sys.argv[1])); open(sys.argv[2],"wb").write(base64.b64decode(p["PublicKey"])); open(sys.argv[3],"wb").write(base64.b64decode(p["ImportToken"]))' \
      "$d/params.json" "$d/wrapping.der" "$d/token.bin"
  openssl rand -out "$d/material.bin" 32
  openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$d/wrapping.der" -in "$d/material.bin" -out "$d/encrypted.bin" \
      -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1
  aws kms import-key-material --key-id "$key" --encrypted-key-material "fileb://$d/encrypted.bin" \
      --import-token "fileb://$d/token.bin" --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE > /dev/null
  alias="alias/$prefix-$i"
  if ! aws kms create-alias --alias-name "$alias" --target-key-id "$key" 2>/dev/null; then
    aws kms update-alias --alias-name "$alias" --target-key-id "$key"
  fi
  # Verify as keyferry does: the alias resolves to an Enabled key.
  state=$(aws kms describe-key --key-id "$alias" --query KeyMetadata.KeyState --output text)
  [ "$state" = Enabled ] || { echo "key $i: $alias is $state" >&2; exit 1; }
  rm -f "$d/material.bin"
done
echo "cli-walkthrough: $count keys imported and aliased"
