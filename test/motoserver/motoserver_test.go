package motoserver

import (
	"context"
	"net/http"
	"testing"
)

func TestStartAnswersAndCloseStops(t *testing.T) {
	s, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.Close()
	if _, err := http.Get(s.URL() + "/moto-api/"); err == nil {
		t.Fatal("moto_server still answering after Close")
	}
}
