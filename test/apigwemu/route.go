package apigwemu

import (
	"encoding/json"
)

// actionOf evaluates the route selection expression $request.body.action on
// a text message: the value of the top-level "action" key (exact, case
// sensitive) when the body is a JSON object and that value is a non-empty
// string; "" otherwise (non-JSON, not an object, missing or non-string).
func actionOf(body []byte) string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return ""
	}
	raw, ok := obj["action"]
	if !ok {
		return ""
	}
	var action string
	if err := json.Unmarshal(raw, &action); err != nil {
		return ""
	}
	return action
}

// selectRoute returns the route key a message is delivered to: the action
// when a route with that key exists, RouteDefault otherwise. Binary messages
// always go to RouteDefault (the selection expression is not evaluated on
// them), and the lifecycle routes $connect and $disconnect can never be
// selected by a message.
func selectRoute(body []byte, binary bool, has func(routeKey string) bool) string {
	if binary {
		return RouteDefault
	}
	action := actionOf(body)
	switch action {
	case "", RouteConnect, RouteDisconnect:
		return RouteDefault
	}
	if has(action) {
		return action
	}
	return RouteDefault
}
