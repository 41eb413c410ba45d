package names

import "testing"

func TestChecks(t *testing.T) {
	cases := []struct {
		name  string
		check func(string) error
		ok    []string
		bad   []string
	}{
		{"pool", CheckPool, []string{"p1", "payments-hsm", "a"}, []string{"", "Payments HSM", "payments_hsm", "-p", "p-", "P1"}},
		{"group", CheckGroup, []string{"payments", "g-1"}, []string{"", "Payments", "g/1"}},
		{"alarm", CheckAlarm, []string{"surge"}, []string{"", "Surge!"}},
		{"agent id", CheckAgentID, []string{"agent-1", "A.b_c", "x"}, []string{"", "-a", "a b", string(make([]byte, 65))}},
		{"account", CheckAccount, []string{"111122223333"}, []string{"", "11112222333", "11112222333a"}},
		{"region", CheckRegion, []string{"us-east-1", "eu-west-3", "us-gov-west-1", "us-isob-east-1", "cn-north-1", "eusc-de-east-1"}, []string{"", "us-east", "US-EAST-1", "useast1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.ok {
				if err := tc.check(s); err != nil {
					t.Errorf("%q refused: %v", s, err)
				}
			}
			for _, s := range tc.bad {
				if err := tc.check(s); err == nil {
					t.Errorf("%q accepted", s)
				}
			}
		})
	}
}
