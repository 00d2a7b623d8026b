// crdcheck decodes the Prometheus Operator objects of rendered Helm
// manifests (ServiceMonitor, PrometheusRule) into the operator's own Go
// types, refusing unknown fields, so a misspelt or misplaced field fails
// offline instead of being dropped by the API server.
//
//	crdcheck MANIFESTS.yaml [...]
//
// Exit 1 when an object does not decode; prints how many were checked.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type meta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func check(doc []byte) (string, error) {
	var m meta
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return "", err
	}
	if m.APIVersion != "monitoring.coreos.com/v1" {
		return "", nil
	}
	var target any
	switch m.Kind {
	case "ServiceMonitor":
		target = &monitoringv1.ServiceMonitor{}
	case "PrometheusRule":
		target = &monitoringv1.PrometheusRule{}
	default:
		return "", fmt.Errorf("%s/%s: kind not known to this check", m.Kind, m.Metadata.Name)
	}
	name := m.Kind + "/" + m.Metadata.Name
	if err := yaml.UnmarshalStrict(doc, target); err != nil {
		return name, fmt.Errorf("%s: %w", name, err)
	}
	return name, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdcheck MANIFESTS.yaml [...]")
		os.Exit(2)
	}
	checked, failed := 0, 0
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		reader := k8syaml.NewYAMLReader(bufio.NewReader(f))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
				os.Exit(2)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			name, err := check(doc)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
				failed++
				continue
			}
			if name != "" {
				checked++
			}
		}
		f.Close()
	}
	fmt.Printf("crdcheck: %d Prometheus Operator object(s) decoded strictly, %d failed\n", checked, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
