{{/*
Helm's standard labels. They are the only thing the chart adds to what the kustomizations
render (e2e/install's drift test allows exactly these keys); selectors and pod labels never
carry them, so an upgrade never changes a selector.
*/}}
{{- define "workspace-webhook.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The name label every workload object carries (and the pods' selector), then Helm's. */}}
{{- define "workspace-webhook.labels" -}}
app.kubernetes.io/name: workspace-webhook
{{ include "workspace-webhook.helmLabels" . }}
{{- end }}

{{- define "workspace-webhook.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/*
Namespaces no webhook sees: the system ones and our own (a broken webhook must never block the
cluster or itself), then the admin's.
*/}}
{{- define "workspace-webhook.namespaceExclusion" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ concat (list "kube-system" "kube-node-lease" .Release.Namespace) .Values.excludedNamespaces | uniq | toJson }}
{{- end }}

{{/* clientConfig of one webhook; call with (dict "root" $ "path" "/...") */}}
{{- define "workspace-webhook.clientConfig" -}}
clientConfig:
  service:
    name: workspace-webhook
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
{{- end }}

{{/* How the webhook configurations get their caBundle, by certificate mode. */}}
{{- define "workspace-webhook.caInjection" -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/workspace-webhook-serving
{{- else if eq .Values.certificates.mode "service-ca" -}}
annotations:
  service.beta.openshift.io/inject-cabundle: "true"
{{- end -}}
{{- end }}

{{/* The Secret mounted at --cert-dir when another component issues the certificate. */}}
{{- define "workspace-webhook.servingSecret" -}}workspace-webhook-serving-tls{{- end }}
