package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ---------------------------------------------------------------------------
// probes and handlers

func validateLivenessProbe(probe *corev1.Probe, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, fldPath)
	if probe.SuccessThreshold != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return allErrs
}

func validateReadinessProbe(probe *corev1.Probe, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, fldPath)
	if probe.TerminationGracePeriodSeconds != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("terminationGracePeriodSeconds"), probe.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
	}
	return allErrs
}

func validateStartupProbe(probe *corev1.Probe, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, fldPath)
	if probe.SuccessThreshold != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return allErrs
}

func validateProbe(probe *corev1.Probe, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	h := commonHandler{Exec: probe.Exec, HTTPGet: probe.HTTPGet, TCPSocket: probe.TCPSocket, GRPC: probe.GRPC}
	allErrs := validateHandler(h, gracePeriod, fldPath)
	allErrs = append(allErrs, validateNonnegativeField(int64(probe.InitialDelaySeconds), fldPath.Child("initialDelaySeconds"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(probe.TimeoutSeconds), fldPath.Child("timeoutSeconds"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(probe.PeriodSeconds), fldPath.Child("periodSeconds"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(probe.SuccessThreshold), fldPath.Child("successThreshold"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(probe.FailureThreshold), fldPath.Child("failureThreshold"))...)
	if probe.TerminationGracePeriodSeconds != nil && *probe.TerminationGracePeriodSeconds <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("terminationGracePeriodSeconds"), *probe.TerminationGracePeriodSeconds, "must be greater than 0"))
	}
	return allErrs
}

type commonHandler struct {
	Exec      *corev1.ExecAction
	HTTPGet   *corev1.HTTPGetAction
	TCPSocket *corev1.TCPSocketAction
	GRPC      *corev1.GRPCAction
	Sleep     *corev1.SleepAction
}

func validateLifecycle(lc *corev1.Lifecycle, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if lc.PostStart != nil {
		h := lc.PostStart
		allErrs = append(allErrs, validateHandler(commonHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, Sleep: h.Sleep}, gracePeriod, fldPath.Child("postStart"))...)
	}
	if lc.PreStop != nil {
		h := lc.PreStop
		allErrs = append(allErrs, validateHandler(commonHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, Sleep: h.Sleep}, gracePeriod, fldPath.Child("preStop"))...)
	}
	return allErrs
}

func validateHandler(h commonHandler, gracePeriod *int64, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	num := 0
	const more = "may not specify more than 1 handler type"
	if h.Exec != nil {
		num++
		if len(h.Exec.Command) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("exec").Child("command"), ""))
		}
	}
	if h.HTTPGet != nil {
		if num > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("httpGet"), more))
		} else {
			num++
			allErrs = append(allErrs, validateHTTPGetAction(h.HTTPGet, fldPath.Child("httpGet"))...)
		}
	}
	if h.TCPSocket != nil {
		if num > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("tcpSocket"), more))
		} else {
			num++
			allErrs = append(allErrs, validatePortNumOrName(h.TCPSocket.Port, fldPath.Child("tcpSocket").Child("port"))...)
		}
	}
	if h.GRPC != nil {
		if num > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("grpc"), more))
		} else {
			num++
			allErrs = append(allErrs, validatePortNumOrName(intstr.FromInt32(h.GRPC.Port), fldPath.Child("grpc").Child("port"))...)
		}
	}
	if h.Sleep != nil {
		if num > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("sleep"), more))
		} else {
			num++
			if gracePeriod != nil && (h.Sleep.Seconds < 0 || h.Sleep.Seconds > *gracePeriod) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("sleep"), h.Sleep.Seconds,
					fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *gracePeriod)))
			}
		}
	}
	if num == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a handler type"))
	}
	return allErrs
}

func validateHTTPGetAction(h *corev1.HTTPGetAction, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(h.Path) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, validatePortNumOrName(h.Port, fldPath.Child("port"))...)
	if h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("scheme"), h.Scheme, []string{string(corev1.URISchemeHTTP), string(corev1.URISchemeHTTPS)}))
	}
	for _, header := range h.HTTPHeaders {
		for _, msg := range validation.IsHTTPHeaderName(header.Name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("httpHeaders"), header.Name, msg))
		}
	}
	return allErrs
}
