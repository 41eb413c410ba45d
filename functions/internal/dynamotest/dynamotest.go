// Package dynamotest runs DynamoDB on moto_server for the control plane's
// tests: one moto_server per test binary on a free 127.0.0.1 port (started
// from TestMain with Main), and fresh, uniquely prefixed tables per test.
package dynamotest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keyferry/keyferry/functions/store"
)

var (
	endpoint string
	counter  atomic.Int64
)

// Main starts moto_server, runs the tests and stops the server. Call it from
// TestMain: `func TestMain(m *testing.M) { os.Exit(dynamotest.Main(m)) }`.
func Main(m *testing.M) int {
	stop, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynamotest: %v (install moto: pip install 'moto[server]'; make deps)\n", err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start() (func(), error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server not on PATH: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("moto_server did not answer on %s: %w", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop, nil
}

// Endpoint is the running moto_server's URL.
func Endpoint() string { return endpoint }

// Client returns a DynamoDB client for the running moto_server.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	if endpoint == "" {
		t.Fatal("dynamotest: moto_server not started; call dynamotest.Main from TestMain")
	}
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	})
}

// Tables creates a fresh set of the control plane's tables (store.TableSchemas)
// under a unique prefix and returns their names.
func Tables(t testing.TB) store.Tables {
	t.Helper()
	c := Client(t)
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	prefix := fmt.Sprintf("t%d-%s-", counter.Add(1), name)
	tables := store.TablesWithPrefix(prefix)
	ctx := context.Background()
	for _, in := range store.TableSchemas(tables) {
		if _, err := c.CreateTable(ctx, &in); err != nil {
			t.Fatalf("dynamotest: create table %s: %v", aws.ToString(in.TableName), err)
		}
	}
	return tables
}
