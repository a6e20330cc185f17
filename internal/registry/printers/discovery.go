package printers

import (
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func endpointSlicePrinter() Printer {
	// kube-apiserver documents these columns with the discovery/v1beta1 field docs.
	doc := discoveryv1beta1.EndpointSlice{}.SwaggerDoc()
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "AddressType", Type: "string", Description: doc["addressType"]},
			{Name: "Ports", Type: "string", Description: doc["ports"]},
			{Name: "Endpoints", Type: "string", Description: doc["endpoints"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			es, err := typed[discoveryv1.EndpointSlice](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{
				es.Name,
				string(es.AddressType),
				formatDiscoveryPorts(es.Ports),
				formatDiscoveryEndpoints(es.Endpoints),
				translateTimestampSince(es.CreationTimestamp, now),
			}, nil
		},
	}
}

// formatDiscoveryPorts lists up to three ports (number, else name, else "*").
func formatDiscoveryPorts(ports []discoveryv1.EndpointPort) string {
	const max = 3
	var list []string
	more := false
	for _, p := range ports {
		if len(list) == max {
			more = true
			break
		}
		switch {
		case p.Port != nil:
			list = append(list, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			list = append(list, *p.Name)
		default:
			list = append(list, "*")
		}
	}
	return listWithMoreString(list, more, len(ports), max)
}

// formatDiscoveryEndpoints lists up to three endpoint addresses.
func formatDiscoveryEndpoints(endpoints []discoveryv1.Endpoint) string {
	const max = 3
	var list []string
	more := false
	count := 0
	for _, ep := range endpoints {
		for _, addr := range ep.Addresses {
			if len(list) < max {
				list = append(list, addr)
			} else {
				more = true
			}
			count++
		}
	}
	return listWithMoreString(list, more, count, max)
}
