package iamsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/keyferry/keyferry/test/kmsemu"
)

// KMS reads KMS (awsJson1.1, TrentService) requests. Keys resolves a key
// id, ARN or alias to what IAM knows of the key.
type KMS struct {
	Region, Account string
	Keys            func(id string) (kmsemu.KeyFacts, bool)
}

var _ Classifier = (*KMS)(nil)

// kmsNoKey are the KMS operations authorized on "*".
var kmsNoKey = map[string]bool{"CreateKey": true, "ListKeys": true, "ListAliases": true, "GenerateRandom": true,
	"CreateCustomKeyStore": true, "DescribeCustomKeyStores": true, "ListRetirableGrants": true}

// Classify implements Classifier.
func (k *KMS) Classify(cctx context.Context, target string, body []byte) ([]Call, error) {
	op := opName(target)
	if !strings.HasPrefix(target, "TrentService.") || op == "" {
		return nil, fmt.Errorf("%w: X-Amz-Target %q", ErrUnclassified, target)
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("%w: kms %s body: %v", ErrUnclassified, op, err)
	}
	action := "kms:" + op
	region := requestRegion(cctx, k.Region)
	ctx := map[string]any{"kms:CallerAccount": k.Account}
	str := func(name string) string { s, _ := req[name].(string); return s }
	setIf := func(key, v string) {
		if v != "" {
			ctx[key] = v
		}
	}
	requestTags := func(field, keyName, valueName string) {
		tags, _ := req[field].([]any)
		var keys []string
		for _, t := range tags {
			m, _ := t.(map[string]any)
			tk, _ := m[keyName].(string)
			tv, _ := m[valueName].(string)
			ctx["aws:RequestTag/"+tk] = tv
			keys = append(keys, tk)
		}
		if len(keys) > 0 {
			sort.Strings(keys)
			ctx["aws:TagKeys"] = keys
		}
	}
	if kmsNoKey[op] {
		if op == "CreateKey" {
			setIf("kms:KeyOrigin", firstNonEmpty(str("Origin"), "AWS_KMS"))
			setIf("kms:KeySpec", firstNonEmpty(str("KeySpec"), str("CustomerMasterKeySpec"), "SYMMETRIC_DEFAULT"))
			setIf("kms:KeyUsage", firstNonEmpty(str("KeyUsage"), "ENCRYPT_DECRYPT"))
			mr, _ := req["MultiRegion"].(bool)
			ctx["kms:MultiRegion"] = strconv.FormatBool(mr)
			bypass, _ := req["BypassPolicyLockoutSafetyCheck"].(bool)
			ctx["kms:BypassPolicyLockoutSafetyCheck"] = strconv.FormatBool(bypass)
			requestTags("Tags", "TagKey", "TagValue")
		}
		return []Call{{Action: action, Resource: "*", Context: ctx}}, nil
	}
	keyField := "KeyId"
	if op == "CreateAlias" || op == "UpdateAlias" {
		keyField = "TargetKeyId"
	}
	keyID := str(keyField)
	if op == "DeleteAlias" {
		keyID = str("AliasName")
	}
	facts, ok := k.Keys(k.inRegion(region, keyID))
	if !ok {
		// The service answers NotFound; IAM has nothing to add.
		return nil, nil
	}
	ctx["kms:KeyOrigin"] = facts.Origin
	ctx["kms:KeySpec"] = facts.KeySpec
	ctx["kms:KeyUsage"] = facts.KeyUsage
	ctx["kms:MultiRegion"] = facts.MultiRegion
	for tk, tv := range facts.Tags {
		ctx["aws:ResourceTag/"+tk] = tv
	}
	switch op {
	case "GetParametersForImport":
		setIf("kms:WrappingAlgorithm", str("WrappingAlgorithm"))
		setIf("kms:WrappingKeySpec", str("WrappingKeySpec"))
	case "ImportKeyMaterial":
		setIf("kms:ExpirationModel", firstNonEmpty(str("ExpirationModel"), "KEY_MATERIAL_EXPIRES"))
	case "Sign", "Verify":
		setIf("kms:MessageType", firstNonEmpty(str("MessageType"), "RAW"))
		setIf("kms:SigningAlgorithm", str("SigningAlgorithm"))
	case "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey":
		setIf("kms:EncryptionAlgorithm", firstNonEmpty(str("EncryptionAlgorithm"), "SYMMETRIC_DEFAULT"))
	case "GenerateMac", "VerifyMac":
		setIf("kms:MacAlgorithm", str("MacAlgorithm"))
	case "TagResource":
		requestTags("Tags", "TagKey", "TagValue")
	case "ReplicateKey":
		return k.replicateKey(req, facts, ctx)
	case "ScheduleKeyDeletion":
		if d, ok := req["PendingWindowInDays"].(float64); ok {
			ctx["kms:ScheduleKeyDeletionPendingWindowInDays"] = strconv.Itoa(int(d))
		}
	}
	var policy json.RawMessage
	if facts.Policy != "" {
		policy = json.RawMessage(facts.Policy)
	}
	calls := []Call{{Action: action, Resource: facts.ARN, Context: ctx, ResourcePolicy: policy}}
	switch op {
	case "CreateAlias", "UpdateAlias", "DeleteAlias":
		// An alias operation needs the permission on the alias too.
		calls = append(calls, Call{Action: action, Resource: k.aliasARN(region, str("AliasName")), Context: map[string]any{"kms:CallerAccount": k.Account}})
	}
	return calls, nil
}

func (k *KMS) aliasARN(region, name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return "arn:aws:kms:" + region + ":" + k.Account + ":" + name
}

// Deny implements Classifier.
func (k *KMS) Deny(w http.ResponseWriter, message string) {
	jsonDeny(w, "application/x-amz-json-1.1", "AccessDeniedException", message)
}

// DynamoDB reads DynamoDB (awsJson1.0, DynamoDB_20120810) requests.
type DynamoDB struct{ Region, Account string }

var _ Classifier = (*DynamoDB)(nil)

// Classify implements Classifier. A transaction needs the item action of
// each of its items on each item's table, as IAM authorizes it.
func (d *DynamoDB) Classify(_ context.Context, target string, body []byte) ([]Call, error) {
	op := opName(target)
	if !strings.HasPrefix(target, "DynamoDB_") || op == "" {
		return nil, fmt.Errorf("%w: X-Amz-Target %q", ErrUnclassified, target)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("%w: dynamodb %s body: %v", ErrUnclassified, op, err)
	}
	table := func(raw json.RawMessage) string {
		var name string
		json.Unmarshal(raw, &name)
		return "arn:aws:dynamodb:" + d.Region + ":" + d.Account + ":table/" + name
	}
	switch op {
	case "ListTables":
		return []Call{{Action: "dynamodb:ListTables", Resource: "*"}}, nil
	case "TransactWriteItems", "TransactGetItems":
		var items []map[string]map[string]json.RawMessage
		json.Unmarshal(req["TransactItems"], &items)
		var calls []Call
		for _, it := range items {
			for kind, v := range it {
				action := map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}[kind]
				if action == "" {
					return nil, fmt.Errorf("%w: dynamodb %s item kind %q", ErrUnclassified, op, kind)
				}
				calls = append(calls, Call{Action: "dynamodb:" + action, Resource: table(v["TableName"])})
			}
		}
		return calls, nil
	case "BatchGetItem", "BatchWriteItem":
		var items map[string]json.RawMessage
		json.Unmarshal(req["RequestItems"], &items)
		var calls []Call
		for name := range items {
			b, _ := json.Marshal(name)
			calls = append(calls, Call{Action: "dynamodb:" + op, Resource: table(b)})
		}
		return calls, nil
	}
	res := table(req["TableName"])
	if ix, ok := req["IndexName"]; ok {
		var name string
		json.Unmarshal(ix, &name)
		res += "/index/" + name
	}
	return []Call{{Action: "dynamodb:" + op, Resource: res}}, nil
}

// Deny implements Classifier.
func (d *DynamoDB) Deny(w http.ResponseWriter, message string) {
	jsonDeny(w, "application/x-amz-json-1.0", "com.amazon.coral.service#AccessDeniedException", message)
}

// SQS reads SQS (awsJson1.0, AmazonSQS) requests.
type SQS struct{ Region, Account string }

var _ Classifier = (*SQS)(nil)

// Classify implements Classifier.
func (q *SQS) Classify(_ context.Context, target string, body []byte) ([]Call, error) {
	op := opName(target)
	if !strings.HasPrefix(target, "AmazonSQS.") || op == "" {
		return nil, fmt.Errorf("%w: X-Amz-Target %q", ErrUnclassified, target)
	}
	var req struct {
		QueueURL  string `json:"QueueUrl"`
		QueueName string `json:"QueueName"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("%w: sqs %s body: %v", ErrUnclassified, op, err)
	}
	name := req.QueueName
	if req.QueueURL != "" {
		name = req.QueueURL[strings.LastIndexByte(req.QueueURL, '/')+1:]
	}
	res := "*"
	if name != "" {
		res = "arn:aws:sqs:" + q.Region + ":" + q.Account + ":" + name
	}
	action := op
	switch op {
	case "SendMessageBatch":
		action = "SendMessage"
	case "DeleteMessageBatch":
		action = "DeleteMessage"
	case "ChangeMessageVisibilityBatch":
		action = "ChangeMessageVisibility"
	}
	return []Call{{Action: "sqs:" + action, Resource: res}}, nil
}

// Deny implements Classifier.
func (q *SQS) Deny(w http.ResponseWriter, message string) {
	w.Header().Set("X-Amzn-Query-Error", "AccessDenied;Sender")
	jsonDeny(w, "application/x-amz-json-1.0", "com.amazonaws.sqs#AccessDeniedException", message)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
