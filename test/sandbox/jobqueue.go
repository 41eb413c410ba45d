package sandbox

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/jobqueue"
	"github.com/keyferry/keyferry/test/esm"
)

// WorkerFunction is the worker's function name behind the Lambda Invoke API.
const WorkerFunction = "keyferry-worker"

// JobQueueName is the job queue's name in moto_server.
const JobQueueName = "keyferry-jobs"

// createJobQueue makes the worker's job queue in moto_server's SQS, with
// the deployed visibility timeout (six times the worker's timeout), and
// turns the control plane's hand-off on.
func (s *Sandbox) createJobQueue(ctx context.Context) error {
	out, err := s.sqsClient().CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(JobQueueName),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): fmt.Sprint(int(6 * jobqueue.WorkerTimeout.Seconds())),
		},
	})
	if err != nil {
		return fmt.Errorf("sandbox: create job queue: %w", err)
	}
	s.Endpoints.JobQueue = aws.ToString(out.QueueUrl)
	s.setenv(awsconfig.EnvJobQueueURL, s.Endpoints.JobQueue)
	return nil
}

func (s *Sandbox) sqsClient() *sqs.Client {
	return sqs.New(sqs.Options{Region: Region, Credentials: staticCreds(), BaseEndpoint: aws.String(s.motoSvc.URL())})
}

// startWorker plays the worker's SQS event source mapping (batch size 1,
// partial batch failures, the deployed maximum concurrency).
func (s *Sandbox) startWorker(ctx context.Context) error {
	lc := lambda.New(lambda.Options{Region: Region, Credentials: staticCreds(), BaseEndpoint: aws.String(s.Lambda.URL())})
	p, err := esm.Start(context.WithoutCancel(ctx), esm.Mapping{
		QueueURL: s.Endpoints.JobQueue, QueueARN: "arn:aws:sqs:" + Region + ":" + Account + ":" + JobQueueName, Region: Region,
		Function: WorkerFunction, BatchSize: 1, MaximumConcurrency: jobqueue.WorkerMaxConcurrency, ReportBatchItemFailures: true,
	}, esm.Clients{SQS: s.mappingSQS(), Lambda: lc, Log: s.Log.With("component", "worker-mapping")})
	if err != nil {
		return fmt.Errorf("sandbox: worker event source mapping: %w", err)
	}
	s.worker = p
	return nil
}

// WorkerStats are the worker mapping's counters (invocations, most in flight).
func (s *Sandbox) WorkerStats() esm.Stats {
	if s.worker == nil {
		return esm.Stats{}
	}
	return s.worker.Stats()
}

// MotoURL is moto_server's own endpoint (behind any DynamoDB fault proxy).
func (s *Sandbox) MotoURL() string { return s.moto.URL() }

// mappingSQS is the SQS client of the worker's event source mapping: under
// IAM from the template, the worker's execution role through the SQS gate
// (Lambda polls with the function's role).
func (s *Sandbox) mappingSQS() *sqs.Client {
	if s.iam == nil || s.Runtime == nil {
		return s.sqsClient()
	}
	f, err := s.Template.Function(WorkerFunction)
	if err != nil {
		return s.sqsClient()
	}
	key, secret := s.roleCredentials(WorkerFunction, f.RoleLogicalID)
	return sqs.New(sqs.Options{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""), BaseEndpoint: aws.String(s.iam.sqs)})
}
