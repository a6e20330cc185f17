package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestMarkControlPlane(t *testing.T) {
	tests := []struct {
		name     string
		existing bool // the Node is there from the start
		cancel   bool // ctx ends before the Node registers
	}{
		{name: "registered", existing: true},
		{name: "registers later"},
		{name: "never registers", cancel: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset()
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{corev1.LabelHostname: "vm"}}}
			if tc.existing {
				if _, err := c.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- markControlPlane(ctx, c, "vm", time.Millisecond, slog.New(slog.DiscardHandler)) }()
			switch {
			case tc.cancel:
				cancel()
			case !tc.existing:
				time.Sleep(20 * time.Millisecond)
				if _, err := c.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("markControlPlane: %v", err)
			}
			got, err := c.CoreV1().Nodes().Get(t.Context(), "vm", metav1.GetOptions{})
			if tc.cancel {
				if err == nil {
					t.Errorf("a Node appeared: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := got.Labels[labelControlPlane]; !ok || v != "" || got.Labels[corev1.LabelHostname] != "vm" {
				t.Errorf("labels %v, want %s=\"\" beside the node's own", got.Labels, labelControlPlane)
			}
		})
	}
}
