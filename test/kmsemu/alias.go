package kmsemu

import (
	"regexp"
	"sort"
	"strings"
	"time"
)

type alias struct {
	name     string
	target   string // key id
	created  time.Time
	modified time.Time
}

var aliasRE = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)

// validateAliasName checks an alias name; a name under the reserved
// alias/aws/ prefix is answered with reservedType (CreateAlias models
// InvalidAliasNameException for it; UpdateAlias and DeleteAlias model no
// such error, so they answer ValidationException).
func validateAliasName(name, reservedType string) *Error {
	if len(name) < 1 || len(name) > 256 || !aliasRE.MatchString(name) {
		return errf(errValidation, "Alias must start with the prefix \"alias/\" and contain only alphanumeric characters, '/', '_' or '-' (got %q)", name)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return errf(reservedType, "Cannot create or modify alias %s: the alias/aws/ prefix is reserved for AWS managed keys", name)
	}
	return nil
}

func init() {
	register("CreateAlias", (*Server).createAlias)
	register("UpdateAlias", (*Server).updateAlias)
	register("DeleteAlias", (*Server).deleteAlias)
	register("ListAliases", (*Server).listAliases)
}

type aliasReq struct {
	AliasName   string
	TargetKeyId string
}

func (s *Server) createAlias(now time.Time, body []byte) (any, *Error) {
	var req aliasReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := validateAliasName(req.AliasName, errInvalidAliasName); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.TargetKeyId, false)
	if e != nil {
		return nil, e
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if _, ok := s.aliases[req.AliasName]; ok {
		return nil, errf(errAlreadyExists, "An alias with the name %s%s already exists", s.arnPrefix(), req.AliasName)
	}
	s.aliases[req.AliasName] = &alias{name: req.AliasName, target: k.id, created: now, modified: now}
	return struct{}{}, nil
}

// updateAlias moves an alias; AWS requires the same key type (symmetric or
// asymmetric, i.e. the same key spec family) and the same key usage.
func (s *Server) updateAlias(now time.Time, body []byte) (any, *Error) {
	var req aliasReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := validateAliasName(req.AliasName, errValidation); e != nil {
		return nil, e
	}
	a, ok := s.aliases[req.AliasName]
	if !ok {
		return nil, errf(errNotFound, "Alias %s%s is not found.", s.arnPrefix(), req.AliasName)
	}
	k, e := s.resolveKey(req.TargetKeyId, false)
	if e != nil {
		return nil, e
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	old := s.keys[a.target]
	if old != nil {
		if old.spec != k.spec || old.usage != k.usage {
			return nil, errf(errValidation, "Alias %s cannot be changed from a %s/%s key to a %s/%s key: the key spec and key usage must match", req.AliasName, old.spec, old.usage, k.spec, k.usage)
		}
	}
	a.target = k.id
	a.modified = now
	return struct{}{}, nil
}

func (s *Server) deleteAlias(_ time.Time, body []byte) (any, *Error) {
	var req aliasReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := validateAliasName(req.AliasName, errValidation); e != nil {
		return nil, e
	}
	a, ok := s.aliases[req.AliasName]
	if !ok {
		return nil, errf(errNotFound, "Alias %s%s is not found.", s.arnPrefix(), req.AliasName)
	}
	if k := s.keys[a.target]; k != nil {
		if e := k.notPendingDeletion(); e != nil {
			return nil, e
		}
	}
	delete(s.aliases, req.AliasName)
	return struct{}{}, nil
}

func (s *Server) listAliases(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId  string
		Limit  *int
		Marker string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	var filter string
	if req.KeyId != "" {
		k, e := s.resolveKey(req.KeyId, false)
		if e != nil {
			return nil, e
		}
		filter = k.id
	}
	names := make([]string, 0, len(s.aliases))
	for n, a := range s.aliases {
		if filter == "" || a.target == filter {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	start, end, next, e := page(req.Limit, req.Marker, len(names))
	if e != nil {
		return nil, e
	}
	type entry struct {
		AliasName       string `json:"AliasName"`
		AliasArn        string `json:"AliasArn"`
		TargetKeyId     string `json:"TargetKeyId"`
		CreationDate    *epoch `json:"CreationDate,omitempty"`
		LastUpdatedDate *epoch `json:"LastUpdatedDate,omitempty"`
	}
	out := []entry{}
	for _, n := range names[start:end] {
		a := s.aliases[n]
		out = append(out, entry{a.name, s.arnPrefix() + a.name, a.target, tp(a.created), tp(a.modified)})
	}
	resp := map[string]any{"Aliases": out, "Truncated": next != ""}
	if next != "" {
		resp["NextMarker"] = next
	}
	return resp, nil
}
