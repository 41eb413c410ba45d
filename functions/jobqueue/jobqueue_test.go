package jobqueue

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		body    string
		want    string
		wantErr bool
	}{
		{`{"job_id":"j-1"}`, "j-1", false},
		{`{"job_id":""}`, "", true},
		{`{"job_id":"j-1","extra":1}`, "", true},
		{`{"job_id":"j-1"} {}`, "", true},
		{`{"job_id":"a\nb"}`, "", true},
		{`[]`, "", true},
		{``, "", true},
		{`{"job_id":"` + string(make([]byte, 300)) + `"}`, "", true},
	}
	for _, tc := range cases {
		m, err := Decode(tc.body)
		if tc.wantErr {
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("%q: err %v, want ErrBadMessage", tc.body, err)
			}
			continue
		}
		if err != nil || m.JobID != tc.want {
			t.Errorf("%q: %+v %v", tc.body, m, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"job_id":"j-1"}`)
	f.Add(`{"job_id":""}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		again, err := Decode(`{"job_id":` + quote(m.JobID) + `}`)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v %v", m, again, err)
		}
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type recorder struct {
	sqsAPI
	got []*sqs.SendMessageInput
}

func (r *recorder) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	r.got = append(r.got, in)
	return &sqs.SendMessageOutput{}, nil
}

func TestHandOnDelay(t *testing.T) {
	cases := []struct {
		after time.Duration
		want  int32
	}{{0, 0}, {-time.Second, 0}, {1500 * time.Millisecond, 2}, {time.Hour, 900}}
	for _, tc := range cases {
		r := &recorder{}
		q := &Queue{SQS: r, URL: "https://sqs.us-east-1.amazonaws.com/111122223333/jobs"}
		if err := q.HandOn(context.Background(), "j-1", tc.after); err != nil {
			t.Fatal(err)
		}
		in := r.got[0]
		if in.DelaySeconds != tc.want || aws.ToString(in.MessageBody) != `{"job_id":"j-1"}` || aws.ToString(in.QueueUrl) != q.URL {
			t.Errorf("after %v: delay %d body %s", tc.after, in.DelaySeconds, aws.ToString(in.MessageBody))
		}
	}
}
