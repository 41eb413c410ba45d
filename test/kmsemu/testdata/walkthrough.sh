#!/usr/bin/env bash
# The documented AWS KMS "bring your own key" walkthrough, done with the
# unmodified AWS CLI and openssl against the emulator at $KMS_URL.
# Run by TestAWSCLIWalkthrough; needs KMS_URL and a clean AWS_* environment.
set -euo pipefail
: "${KMS_URL:?KMS_URL must be set}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

kms() { aws --endpoint-url "$KMS_URL" --output text kms "$@"; }
b64d() { openssl base64 -d -A; }
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }

echo "== symmetric: create-key --origin EXTERNAL"
key=$(kms create-key --origin EXTERNAL --description walkthrough --query KeyMetadata.KeyId)
state=$(kms describe-key --key-id "$key" --query KeyMetadata.KeyState)
[ "$state" = PendingImport ] || { echo "state after create: $state"; exit 1; }

echo "== get-parameters-for-import RSAES_OAEP_SHA_256 / RSA_2048"
read -r token pub < <(kms get-parameters-for-import --key-id "$key" \
	--wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048 --query '[ImportToken,PublicKey]')
printf '%s' "$token" | b64d > token.bin
printf '%s' "$pub" | b64d > wrapping.der

echo "== wrap 32 random bytes with openssl pkeyutl (OAEP SHA-256)"
openssl rand -out material.bin 32
openssl pkeyutl -encrypt -in material.bin -out wrapped.bin -inkey wrapping.der -keyform DER -pubin \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256

echo "== import-key-material (expires in 30 days)"
valid_to=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
kms import-key-material --key-id "$key" --encrypted-key-material fileb://wrapped.bin \
	--import-token fileb://token.bin --expiration-model KEY_MATERIAL_EXPIRES --valid-to "$valid_to" >/dev/null
read -r state model < <(kms describe-key --key-id "$key" --query '[KeyMetadata.KeyState,KeyMetadata.ExpirationModel]')
[ "$state" = Enabled ] || { echo "state after import: $state"; exit 1; }
[ "$model" = KEY_MATERIAL_EXPIRES ] || { echo "expiration model: $model"; exit 1; }

echo "== re-import the same material, now not expiring"
kms import-key-material --key-id "$key" --encrypted-key-material fileb://wrapped.bin \
	--import-token fileb://token.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE >/dev/null

echo "== alias, encrypt with the alias, decrypt without a key id"
kms create-alias --alias-name alias/walkthrough --target-key-id "$key"
printf 'attack at dawn' > plain.txt
kms encrypt --key-id alias/walkthrough --plaintext fileb://plain.txt \
	--encryption-context purpose=walkthrough --query CiphertextBlob | b64d > ct.bin
kms decrypt --ciphertext-blob fileb://ct.bin --encryption-context purpose=walkthrough \
	--query Plaintext | b64d > out.txt
cmp plain.txt out.txt
if kms decrypt --ciphertext-blob fileb://ct.bin --encryption-context purpose=other >/dev/null 2>err.txt; then
	echo "decrypt with the wrong encryption context succeeded"; exit 1
fi
grep -q InvalidCiphertextException err.txt

echo "== ECC_NIST_P256: create-key, RSA_AES_KEY_WRAP_SHA_256 / RSA_3072"
eckey=$(kms create-key --origin EXTERNAL --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId)
read -r token pub < <(kms get-parameters-for-import --key-id "$eckey" \
	--wrapping-algorithm RSA_AES_KEY_WRAP_SHA_256 --wrapping-key-spec RSA_3072 --query '[ImportToken,PublicKey]')
printf '%s' "$token" | b64d > ectoken.bin
printf '%s' "$pub" | b64d > ecwrapping.der

echo "== openssl: EC key as PKCS#8 DER, AES-256 key wrap with padding, OAEP of the AES key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in ec.pem -outform DER -out ec.der
openssl rand -out aes.bin 32
openssl enc -id-aes256-wrap-pad -K "$(hexof aes.bin)" -iv A65959A6 -in ec.der -out kwp.bin
openssl pkeyutl -encrypt -in aes.bin -out aeswrapped.bin -inkey ecwrapping.der -keyform DER -pubin \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
cat aeswrapped.bin kwp.bin > ecwrapped.bin
kms import-key-material --key-id "$eckey" --encrypted-key-material fileb://ecwrapped.bin \
	--import-token fileb://ectoken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE >/dev/null

echo "== sign with KMS, verify with openssl and the private key's public half"
printf 'message to sign' > msg.txt
kms sign --key-id "$eckey" --message fileb://msg.txt --message-type RAW \
	--signing-algorithm ECDSA_SHA_256 --query Signature | b64d > sig.bin
openssl pkey -in ec.pem -pubout -out ecpub.pem
openssl dgst -sha256 -verify ecpub.pem -signature sig.bin msg.txt
kms get-public-key --key-id "$eckey" --query PublicKey | b64d > kmspub.der
openssl pkey -pubin -in ecpub.pem -outform DER -out ecpub.der
cmp kmspub.der ecpub.der
echo "walkthrough OK"
