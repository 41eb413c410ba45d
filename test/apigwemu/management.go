package apigwemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
)

// managementTimeFormat is the ISO 8601 form the SDK parses for
// connectedAt / lastActiveAt.
const managementTimeFormat = "2006-01-02T15:04:05.000Z"

// serveManagement implements the @connections API:
//
//	POST   /{stage}/@connections/{id}  PostToConnection (body = data)
//	GET    /{stage}/@connections/{id}  GetConnection
//	DELETE /{stage}/@connections/{id}  DeleteConnection
//
// Errors are JSON {"message": ...} with x-amzn-ErrorType, as the
// restJson1 deserializers of service/apigatewaymanagementapi expect:
// 410 GoneException, 413 PayloadTooLargeException, 403 ForbiddenException.
// With Options.ManagementCredentials set, requests must carry a valid SigV4
// Authorization header (the real endpoint requires IAM
// execute-api:ManageConnections); without, the SDK's signature is ignored.
func (e *Emulator) serveManagement(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := url.PathUnescape(rawID)
	if err != nil || id == "" {
		writeError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	log := e.log.With("op", r.Method+" @connections", "connection_id", id)
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxMessageSize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestException", "cannot read body")
		return
	}
	if r.Method == http.MethodPost && len(data) > MaxMessageSize {
		// Checked first: a truncated body cannot be signature-verified.
		log.Info("post refused", "size", len(data), "reason", "payload too large")
		writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
		return
	}
	if e.opts.ManagementCredentials != nil {
		key, err := verifyManagement(r, data, e.opts.ManagementCredentials, e.opts.Region)
		if err != nil {
			log.Info("management refused", "err", err)
			writeError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
			return
		}
		if e.opts.Authorize != nil {
			if err := e.opts.Authorize(r.Context(), key, "execute-api:ManageConnections", e.executeAPIARN(r.Method+"/@connections/"+id)); err != nil {
				log.Info("management refused", "reason", "iam", "err", err)
				writeError(w, http.StatusForbidden, "AccessDeniedException", err.Error())
				return
			}
		}
	}
	c := e.lookup(id)
	switch r.Method {
	case http.MethodPost:
		if c == nil || c.send(data, true) != nil {
			log.Info("post refused", "size", len(data), "reason", "gone")
			writeError(w, http.StatusGone, "GoneException", "")
			return
		}
		log.Debug("posted", "size", len(data))
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		if c == nil || c.isClosing() {
			writeError(w, http.StatusGone, "GoneException", "")
			return
		}
		ci := c.info()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"connectedAt":  ci.ConnectedAt.UTC().Format(managementTimeFormat),
			"lastActiveAt": ci.LastActiveAt.UTC().Format(managementTimeFormat),
			"identity":     map[string]string{"sourceIp": ci.SourceIP, "userAgent": ci.UserAgent},
		})
	case http.MethodDelete:
		if c == nil || c.isClosing() {
			writeError(w, http.StatusGone, "GoneException", "")
			return
		}
		c.initiateClose(CloseNormal, reasonDeleted, "DeleteConnection")
		log.Info("deleted")
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
}
