{{/* Name of the chart, overridable. */}}
{{- define "cce-upgrade-watch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of this release's objects: the release name, plus the chart name unless
the release name already contains it. */}}
{{- define "cce-upgrade-watch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cce-upgrade-watch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object: the chart's own and commonLabels. */}}
{{- define "cce-upgrade-watch.labels" -}}
{{- include "cce-upgrade-watch.labelsWith" (dict "ctx" . "extra" dict) }}
{{- end }}

{{/* The labels of one object, as YAML, from (dict "ctx" $ "extra" LABELS): the chart's own
win over that object's extra labels (a Service's component, podLabels...), which win over
commonLabels. values.schema.json refuses commonLabels that name a key of the chart's own, so
a user's label is never dropped without a word. */}}
{{- define "cce-upgrade-watch.labelsWith" -}}
{{- $ctx := .ctx -}}
{{- $own := dict
  "helm.sh/chart" (include "cce-upgrade-watch.chart" $ctx)
  "app.kubernetes.io/name" (include "cce-upgrade-watch.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/version" $ctx.Chart.AppVersion
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "app.kubernetes.io/part-of" "cce-upgrade-watch" -}}
{{- toYaml (merge $own (deepCopy (.extra | default dict)) (deepCopy ($ctx.Values.commonLabels | default dict))) }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "cce-upgrade-watch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cce-upgrade-watch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cce-upgrade-watch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cce-upgrade-watch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cce-upgrade-watch.leaseName" -}}
{{- default (include "cce-upgrade-watch.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "cce-upgrade-watch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the extra CA bundle is mounted. */}}
{{- define "cce-upgrade-watch.caBundleDir" -}}
/etc/cce-upgrade-watch/ca
{{- end }}

{{/* The rules for serving watches in a scope, shared by the ClusterRole (every namespace)
and the per-namespace Roles (watchNamespaces). Each rule is exactly what the operator calls. */}}
{{- define "cce-upgrade-watch.watchRules" -}}
# Find the watches to serve: the controller's cache lists and watches them.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["upgradeworkflowwatches"]
  verbs: ["list", "watch"]
# Mirror the workflow into status: server-side apply on the status subresource, never the spec.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["upgradeworkflowwatches/status"]
  verbs: ["patch"]
# The accounts watches name, kept in the operator's cache (list, watch); get shows no more than list does.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["cceaccounts"]
  verbs: ["get", "list", "watch"]
# Each account's Ready and Synced conditions and watch count; never its spec.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["cceaccounts/status"]
  verbs: ["patch"]
# One Event per transition: each is created once and never updated.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{ include "cce-upgrade-watch.secretRules" . }}
{{- end }}

{{/* Reading credentials: in the served scope, and in the release namespace for
ClusterCCEAccounts. */}}
{{- define "cce-upgrade-watch.secretRules" -}}
# Credentials: the metadata of Secrets labelled cce.upgradewatch.io/credentials=true is listed and watched to notice rotation; only a Secret an account names is read.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* What the operator reads and writes cluster-wide in either mode: cluster-scoped accounts,
and the namespaces their conditions select. */}}
{{- define "cce-upgrade-watch.clusterRules" -}}
# ClusterCCEAccounts, cluster-scoped, kept in the operator's cache (list, watch); get shows no more than list does.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["clustercceaccounts"]
  verbs: ["get", "list", "watch"]
# Each ClusterCCEAccount's Ready and Synced conditions and watch count; never its spec.
- apiGroups: ["cce.upgradewatch.io"]
  resources: ["clustercceaccounts/status"]
  verbs: ["patch"]
# Namespace labels, for the namespaceSelector of a ClusterCCEAccount's conditions (metadata only).
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/* Where the default-credentials Secret and the operator's projected token are mounted. */}}
{{- define "cce-upgrade-watch.defaultCredentialsDir" -}}
/var/run/secrets/cce-upgrade-watch/default-credentials
{{- end }}
{{- define "cce-upgrade-watch.identityTokenDir" -}}
/var/run/secrets/cce-upgrade-watch/identity
{{- end }}

{{/*
operator.allowInsecureEndpoints, refused without its second consent: it sends credentials
over plain http to any host, so one mistyped value must not turn it on.
*/}}
{{- define "cce-upgrade-watch.allowInsecureEndpoints" -}}
{{- if and .Values.operator.allowInsecureEndpoints (not .Values.operator.iUnderstandInsecureEndpoints) -}}
{{- fail "operator.allowInsecureEndpoints lets CCE and IAM calls, credentials included, go over plain http to any host and port; it is for tests only. Set operator.iUnderstandInsecureEndpoints=true as well to allow it." -}}
{{- end -}}
{{- .Values.operator.allowInsecureEndpoints -}}
{{- end -}}

{{/* The image pull secrets of the pod: imagePullSecrets, then global.imagePullSecrets (a
parent chart's), each entry {name: x} or the bare name, the first of each name kept. */}}
{{- define "cce-upgrade-watch.imagePullSecrets" -}}
{{- $names := list }}
{{- $global := (.Values.global | default dict).imagePullSecrets | default list }}
{{- range concat (.Values.imagePullSecrets | default list) $global }}
{{- $name := . }}
{{- if kindIs "map" . }}
{{- $name = .name }}
{{- end }}
{{- if not (has $name $names) }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- $secrets := list }}
{{- range $names }}
{{- $secrets = append $secrets (dict "name" .) }}
{{- end }}
{{- with $secrets }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The ports of the proxies of proxy.httpProxy and proxy.httpsProxy: the URL's own, else
the scheme's (80 for http, 443 for https), each once; for the NetworkPolicy's egress. */}}
{{- define "cce-upgrade-watch.proxyPorts" -}}
{{- $ports := list }}
{{- range (list .Values.proxy.httpProxy .Values.proxy.httpsProxy) }}
{{- if . }}
{{- $url := urlParse . }}
{{- $port := "" }}
{{- if regexMatch ":[0-9]+$" $url.host }}
{{- $port = regexFind "[0-9]+$" $url.host }}
{{- else }}
{{- $port = eq $url.scheme "https" | ternary "443" "80" }}
{{- end }}
{{- if not (has $port $ports) }}
{{- $ports = append $ports $port }}
{{- end }}
{{- end }}
{{- end }}
{{- join "," $ports }}
{{- end }}
