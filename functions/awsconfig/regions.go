package awsconfig

import (
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/shared/kmsregions"
)

// regionalKMS caches one KMS client per Region.
type regionalKMS struct {
	mu      sync.Mutex
	clients map[string]*kms.Client
}

// KMSIn returns the KMS client of region for the groups' keys: the same
// configuration and credentials as KMS (the assumed role when set), signed
// for region. A name that is not a KMS Region is an error.
func (c *Clients) KMSIn(region string) (*kms.Client, error) {
	if !kmsregions.Known(region) {
		return nil, fmt.Errorf("awsconfig: %q is not a Region KMS is offered in", region)
	}
	c.regional.mu.Lock()
	defer c.regional.mu.Unlock()
	if k, ok := c.regional.clients[region]; ok {
		return k, nil
	}
	if c.regional.clients == nil {
		c.regional.clients = map[string]*kms.Client{}
	}
	k := kms.NewFromConfig(c.kmsConfig, func(o *kms.Options) { o.Region = region })
	c.regional.clients[region] = k
	return k, nil
}
