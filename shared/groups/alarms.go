package groups

import (
	"github.com/keyferry/keyferry/shared/names"

	"math"
	"slices"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// operationUsage maps the KMS Operation dimension values of AWS/KMS
// SuccessfulRequest that concern one key to the key usages that can produce
// them (nil: any usage).
var operationUsage = map[string][]keyspec.Usage{
	"Decrypt":                             {keyspec.EncryptDecrypt},
	"Encrypt":                             {keyspec.EncryptDecrypt},
	"ReEncrypt":                           {keyspec.EncryptDecrypt},
	"GenerateDataKey":                     {keyspec.EncryptDecrypt},
	"GenerateDataKeyWithoutPlaintext":     {keyspec.EncryptDecrypt},
	"GenerateDataKeyPair":                 {keyspec.EncryptDecrypt},
	"GenerateDataKeyPairWithoutPlaintext": {keyspec.EncryptDecrypt},
	"Sign":                                {keyspec.SignVerify},
	"Verify":                              {keyspec.SignVerify},
	"GenerateMac":                         {keyspec.GenerateVerifyMAC},
	"VerifyMac":                           {keyspec.GenerateVerifyMAC},
	"DeriveSharedSecret":                  {keyspec.KeyAgreement},
	"GetPublicKey":                        nil,
}

// symmetricOnly lists operations KMS performs only with symmetric keys.
var symmetricOnly = map[string]bool{
	"GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"GenerateDataKeyPair": true, "GenerateDataKeyPairWithoutPlaintext": true,
}

// Operations lists the KMS operations an alarm can watch, sorted.
func Operations() []string {
	out := make([]string, 0, len(operationUsage))
	for op := range operationUsage {
		out = append(out, op)
	}
	slices.Sort(out)
	return out
}

var (
	thresholdComparisons = []string{"GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"}
	anomalyComparisons   = []string{"GreaterThanUpperThreshold", "LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold"}
)

// maxAlarmWindow is CloudWatch's limit on Period x EvaluationPeriods
// (PutMetricAlarm: "cannot be more than 86,400 seconds").
const maxAlarmWindow = 24 * time.Hour

// alarmDefaults fills the built-in alarm defaults into a.
// present lists the keys written for the alarm: an explicit zero stays
// (and is reported), only absent fields are defaulted.
func alarmDefaults(a *Alarm, present map[string]bool) {
	if a.Comparison == "" && !present["comparison"] {
		switch a.Type {
		case AlarmThreshold:
			a.Comparison = "GreaterThanThreshold"
		case AlarmAnomaly:
			a.Comparison = "GreaterThanUpperThreshold"
		}
	}
	if !present["period"] {
		a.Period = Duration(DefaultAlarmPeriod)
	}
	if !present["evaluation_periods"] {
		a.EvaluationPeriods = DefaultEvaluationPeriods
	}
	if !present["cooldown"] {
		a.Cooldown = Duration(DefaultAlarmCooldown)
	}
}

// AlarmPrefix starts the name of every CloudWatch alarm keyferry manages.
const AlarmPrefix = "keyferry-"

// MaterialExpiryAlarm is the reserved alarm name (within a group) of the
// alarm on SecondsUntilKeyMaterialExpiration.
const MaterialExpiryAlarm = "material-expiry"

// AlarmName is the CloudWatch alarm name of a group's alarm. Validation
// guarantees that no two (group, alarm) pairs of a file spell the same name.
func AlarmName(group, alarm string) string { return AlarmPrefix + group + "-" + alarm }

// checkAlarm validates one alarm of a group whose key info is info (nil if
// the group's key spec is invalid). present lists the keys written for it.
func checkAlarm(p *problems, path string, a *Alarm, info *keyspec.Info, usage keyspec.Usage, present map[string]bool) {
	if err := names.CheckAlarm(a.Name); err != nil {
		p.addf(path+".name", "%v", err)
	}
	if a.Operation == "" {
		p.addf(path+".operation", "required: one of %v", Operations())
	} else if usages, ok := operationUsage[a.Operation]; !ok {
		p.addf(path+".operation", "%q is not a KMS operation keyferry can watch (one of %v)", a.Operation, Operations())
	} else if info != nil {
		switch {
		case usages == nil && !info.Asymmetric():
			p.addf(path+".operation", "%s never happens on a %s key", a.Operation, info.Spec)
		case usages != nil && !slices.Contains(usages, usage):
			p.addf(path+".operation", "%s never happens on a %s key", a.Operation, usage)
		case symmetricOnly[a.Operation] && !info.Symmetric():
			p.addf(path+".operation", "%s happens only on SYMMETRIC_DEFAULT keys", a.Operation)
		}
	}
	switch a.Type {
	case AlarmThreshold:
		if math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) || a.Threshold <= 0 {
			p.addf(path+".threshold", "threshold alarms need a finite threshold > 0")
		}
		if present["band_width"] {
			p.addf(path+".band_width", "only anomaly alarms take band_width")
		}
		if !slices.Contains(thresholdComparisons, a.Comparison) {
			p.addf(path+".comparison", "%q is not a threshold comparison (one of %v)", a.Comparison, thresholdComparisons)
		}
	case AlarmAnomaly:
		if math.IsNaN(a.BandWidth) || math.IsInf(a.BandWidth, 0) || a.BandWidth <= 0 {
			p.addf(path+".band_width", "anomaly alarms need a finite band_width > 0")
		}
		if present["threshold"] {
			p.addf(path+".threshold", "only threshold alarms take threshold")
		}
		if !slices.Contains(anomalyComparisons, a.Comparison) {
			p.addf(path+".comparison", "%q is not an anomaly-band comparison (one of %v)", a.Comparison, anomalyComparisons)
		}
	case "":
		p.addf(path+".type", "required: threshold or anomaly")
	default:
		p.addf(path+".type", "%q is not threshold or anomaly", a.Type)
	}
	period := a.Period.Std()
	periodOK := period > 0 && period%time.Minute == 0
	if !periodOK {
		p.addf(path+".period", "must be a positive multiple of 60s, got %s", a.Period)
	}
	if a.EvaluationPeriods < 1 {
		p.addf(path+".evaluation_periods", "must be >= 1, got %d", a.EvaluationPeriods)
	} else if periodOK && (a.EvaluationPeriods > int(maxAlarmWindow/time.Minute) || time.Duration(a.EvaluationPeriods)*period > maxAlarmWindow) {
		p.addf(path+".evaluation_periods", "period x evaluation_periods must not exceed 1 day (CloudWatch limit), got %d x %s", a.EvaluationPeriods, a.Period)
	}
	if a.Cooldown <= 0 {
		p.addf(path+".cooldown", "must be > 0, got %s", a.Cooldown)
	}
}
