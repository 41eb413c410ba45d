package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/jobqueue"
	"github.com/keyferry/keyferry/functions/kmssign"
	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// Deps is what every handler needs.
type Deps struct {
	Engine  *engine.Engine
	Store   *store.Store
	Log     *slog.Logger
	Metrics *metrics.Emitter
	Now     func() time.Time
	// Queue is the job queue (nil: jobs run inline).
	Queue *jobqueue.Queue
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Deps) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

// FromEnv builds Deps for a Lambda main from the environment
// (awsconfig.FromEnv), with JSON slog on stderr and EMF on stdout.
func FromEnv(ctx context.Context) (*Deps, error) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	s, err := awsconfig.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	clients, err := awsconfig.Load(ctx, s)
	if err != nil {
		return nil, err
	}
	cfg, err := groups.Load(s.GroupsFile)
	if err != nil {
		return nil, fmt.Errorf("key-group file %s: %w", s.GroupsFile, err)
	}
	st := store.New(clients.DynamoDB, s.Tables)
	m := &metrics.Emitter{}
	signer := kmssign.New(clients.SignerKMS, s.SigningKeyID)
	eng := &engine.Engine{
		Store: st, KMS: clients.KMS, Groups: cfg,
		Signer: signer, SignerID: signer.KeyID(),
		Pacer: pacer.New(s.QuotaFraction, s.QuotaScale), Metrics: m, Log: log,
		RequestTTL: s.RequestTTL, JobTimeout: s.JobTimeout, MaxAttempts: s.MaxAttempts,
	}
	// KMS quotas are per account-region, shared by every instance of every
	// function: the small ones are paced through the DynamoDB ledger.
	eng.Pacer.Ledger = &pacer.Ledger{DB: clients.DynamoDB, Table: s.Tables.Pacing}
	var queue *jobqueue.Queue
	if s.JobQueueURL != "" {
		queue = &jobqueue.Queue{SQS: clients.SQS, URL: s.JobQueueURL}
		eng.Handoff = queue
	}
	if s.RotateFunctionARN != "" {
		eng.CloudWatch, eng.AlarmAction = clients.CloudWatch, s.RotateFunctionARN
	} else {
		log.WarnContext(ctx, "no rotate function ARN: engine-managed KMS alarms disabled", "env", awsconfig.EnvRotateFunctionARN)
	}
	if clients.Connections != nil {
		eng.Connections = clients.Connections
	}
	// Multi-Region groups' replicas: the same credentials in another Region.
	eng.Regional = func(region string) (engine.KMSAPI, error) { return clients.KMSIn(region) }
	return &Deps{Engine: eng, Store: st, Log: log, Metrics: m, Queue: queue}, nil
}
