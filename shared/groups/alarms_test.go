package groups

import (
	"testing"
	"time"
)

func withAlarm(a m) func(doc, g m) {
	return func(doc, g m) { g["alarms"] = []any{a} }
}

func TestValidateAlarms(t *testing.T) {
	thr := func(kv ...any) m {
		a := m{"name": "surge", "operation": "Decrypt", "type": "threshold", "threshold": 1000}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(a, kv[i].(string))
			} else {
				a[kv[i].(string)] = kv[i+1]
			}
		}
		return a
	}
	const p = "groups[0].alarms[0]"
	runValidateCases(t, []validateCase{
		{name: "threshold valid with defaults", mut: withAlarm(thr()), check: func(t *testing.T, c *Config) {
			a := c.Groups[0].Alarms[0]
			if a.Comparison != "GreaterThanThreshold" || a.Period.Std() != DefaultAlarmPeriod || a.EvaluationPeriods != 1 || a.Cooldown.Std() != time.Hour {
				t.Fatalf("alarm defaults not applied: %+v", a)
			}
		}},
		{name: "anomaly valid", mut: withAlarm(thr("type", "anomaly", "threshold", nil, "band_width", 2.5)), check: func(t *testing.T, c *Config) {
			if a := c.Groups[0].Alarms[0]; a.Comparison != "GreaterThanUpperThreshold" {
				t.Fatalf("anomaly comparison default: %+v", a)
			}
		}},
		{name: "name missing", mut: withAlarm(thr("name", nil)), path: p + ".name", frag: "required"},
		{name: "name duplicate", mut: func(doc, g m) { g["alarms"] = []any{thr(), thr()} }, path: "groups[0].alarms[1].name", frag: "duplicate of alarms[0]"},
		{name: "operation unknown", mut: withAlarm(thr("operation", "Rotate")), path: p + ".operation", frag: "not a KMS operation"},
		{name: "operation missing", mut: withAlarm(thr("operation", nil)), path: p + ".operation", frag: "required"},
		{name: "operation never on usage", mut: withAlarm(thr("operation", "Sign")), path: p + ".operation", frag: "Sign never happens on a ENCRYPT_DECRYPT key"},
		{name: "GenerateDataKey on RSA", mut: func(doc, g m) {
			g["key_spec"] = "RSA_2048"
			g["alarms"] = []any{thr("operation", "GenerateDataKey")}
		}, path: p + ".operation", frag: "only on SYMMETRIC_DEFAULT"},
		{name: "GetPublicKey on symmetric", mut: withAlarm(thr("operation", "GetPublicKey")), path: p + ".operation", frag: "never happens on a SYMMETRIC_DEFAULT key"},
		{name: "GenerateMac on HMAC", mut: func(doc, g m) {
			g["key_spec"] = "HMAC_512"
			g["alarms"] = []any{thr("operation", "GenerateMac")}
		}},
		{name: "type missing", mut: withAlarm(thr("type", nil)), path: p + ".type", frag: "required"},
		{name: "type unknown", mut: withAlarm(thr("type", "static")), path: p + ".type", frag: "not threshold or anomaly"},
		{name: "threshold zero", mut: withAlarm(thr("threshold", 0)), path: p + ".threshold", frag: "> 0"},
		{name: "threshold missing", mut: withAlarm(thr("threshold", nil)), path: p + ".threshold", frag: "> 0"},
		{name: "threshold with band_width", mut: withAlarm(thr("band_width", 2)), path: p + ".band_width", frag: "only anomaly alarms"},
		{name: "threshold comparison wrong", mut: withAlarm(thr("comparison", "GreaterThanUpperThreshold")), path: p + ".comparison", frag: "not a threshold comparison"},
		{name: "threshold comparison explicit", mut: withAlarm(thr("comparison", "LessThanThreshold"))},
		{name: "anomaly without band_width", mut: withAlarm(thr("type", "anomaly", "threshold", nil)), path: p + ".band_width", frag: "> 0"},
		{name: "anomaly with threshold", mut: withAlarm(thr("type", "anomaly", "band_width", 2)), path: p + ".threshold", frag: "only threshold alarms"},
		{name: "anomaly comparison wrong", mut: withAlarm(thr("type", "anomaly", "threshold", nil, "band_width", 2, "comparison", "GreaterThanThreshold")), path: p + ".comparison", frag: "not an anomaly-band comparison"},
		{name: "period 90s", mut: withAlarm(thr("period", "90s")), path: p + ".period", frag: "multiple of 60s"},
		{name: "period explicit zero", mut: withAlarm(thr("period", "0s")), path: p + ".period", frag: "multiple of 60s"},
		{name: "period 1h", mut: withAlarm(thr("period", "1h"))},
		{name: "evaluation_periods 0", mut: withAlarm(thr("evaluation_periods", 0)), path: p + ".evaluation_periods", frag: ">= 1"},
		{name: "window over a day", mut: withAlarm(thr("period", "1h", "evaluation_periods", 25)), path: p + ".evaluation_periods", frag: "must not exceed 1 day"},
		{name: "window exactly a day", mut: withAlarm(thr("period", "1h", "evaluation_periods", 24))},
		{name: "cooldown zero", mut: withAlarm(thr("cooldown", "0s")), path: p + ".cooldown", frag: "> 0"},
		{name: "cooldown negative", mut: withAlarm(thr("cooldown", "-1h")), path: p + ".cooldown", frag: "> 0"},
		{name: "unknown alarm key", mut: withAlarm(thr("metric", "Decrypt")), path: p + ".metric", frag: "unknown field"},
	})
}

func TestOperationsSorted(t *testing.T) {
	ops := Operations()
	if len(ops) != len(operationUsage) {
		t.Fatalf("%d operations, table has %d", len(ops), len(operationUsage))
	}
	for i := 1; i < len(ops); i++ {
		if ops[i-1] >= ops[i] {
			t.Fatalf("not sorted: %v", ops)
		}
	}
}
