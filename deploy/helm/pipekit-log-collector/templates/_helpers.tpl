{{/* Names and labels. Not .Chart.Name: as a subchart under an alias (`vector`) that would
leak into resource names, which must be lowercase. */}}
{{- define "plc.name" -}}
{{- default "pipekit-log-collector" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "plc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "plc.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "plc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "plc.labels" -}}
helm.sh/chart: {{ printf "pipekit-log-collector-%s" .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "plc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "plc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "plc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "plc.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The shared values a parent chart may pass through global.pipekit. */}}
{{- define "plc.global" -}}
{{- $g := .Values.global | default dict }}
{{- toYaml (get $g "pipekit" | default dict) }}
{{- end }}

{{- define "plc.messengerBaseUri" -}}
{{- $g := include "plc.global" . | fromYaml }}
{{- .Values.messengerBaseUri | default (get $g "messengerBaseUri") | default "" }}
{{- end }}

{{- define "plc.inlineKey" -}}
{{- $g := include "plc.global" . | fromYaml }}
{{- .Values.secrets.pipekitSecretAccessKey | default (get $g "pipekitSecretAccessKey") | default "" }}
{{- end }}

{{- define "plc.existingSecret" -}}
{{- $g := include "plc.global" . | fromYaml }}
{{- .Values.secrets.existingSecret | default (get $g "existingSecret") | default "" }}
{{- end }}

{{/* Name of the Secret holding the API key, or "" when there is none. */}}
{{- define "plc.secretName" -}}
{{- if include "plc.existingSecret" . }}
{{- include "plc.existingSecret" . }}
{{- else if include "plc.inlineKey" . }}
{{- include "plc.fullname" . }}
{{- end }}
{{- end }}

{{/* The priority class: Vector's `podPriorityClassName` wins over `priorityClassName`. */}}
{{- define "plc.priorityClassName" -}}
{{- .Values.podPriorityClassName | default .Values.priorityClassName | default "" }}
{{- end }}

{{/* The names `env` sets, one per line. */}}
{{- define "plc.envNames" -}}
{{- range .Values.env }}{{ printf "%s\n" (toString (get . "name")) }}{{ end }}
{{- end }}

{{/*
The first Secret listed in `envFrom`, or "". Without `secrets.*`, it is where the key comes from:
as PIPEKIT_API_KEY itself, or under `secrets.existingSecretKey` (the Pipekit Agent Secret's shape),
which the DaemonSet maps to PIPEKIT_API_KEY.
*/}}
{{- define "plc.envFromSecret" -}}
{{- $found := "" }}
{{- range .Values.envFrom }}
{{- if and (not $found) (kindIs "map" .) (get . "secretRef") }}
{{- $found = tpl (toString (get (get . "secretRef") "name")) $ }}
{{- end }}
{{- end }}
{{- $found }}
{{- end }}

{{- define "plc.configDir" -}}/etc/pipekit-log-collector{{- end }}
{{- define "plc.apiKeyPath" -}}/var/run/secrets/pipekit/api-key{{- end }}

{{/* Path of the config file inside the container. */}}
{{- define "plc.configPath" -}}
{{- if .Values.existingConfigMaps }}
{{- printf "%s/%s/%s" (include "plc.configDir" .) (first .Values.existingConfigMaps) .Values.existingConfigKey }}
{{- else }}
{{- printf "%s/config.yaml" (include "plc.configDir" .) }}
{{- end }}
{{- end }}

{{/*
The collector's config.yaml: the user's `config` with the keys the chart owns filled in.
Those keys come from their own values; setting them in `config` too is refused, so that there is
one place for each.
*/}}
{{- define "plc.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if hasKey $cfg "dataDir" }}{{ fail "config.dataDir: set the top-level value `dataDir` instead (it is also the hostPath the chart mounts)" }}{{ end }}
{{- $api := get $cfg "api" | default dict }}
{{- if hasKey $api "address" }}{{ fail "config.api.address: set `api.port` instead (the chart binds 0.0.0.0 so that probes and Prometheus reach the API)" }}{{ end }}
{{- $metadata := get $cfg "metadata" | default dict }}
{{- if hasKey $metadata "provider" }}{{ fail "config.metadata.provider: set the top-level value `metadataProvider` instead (it also decides the RBAC rules)" }}{{ end }}
{{- $source := get $cfg "source" | default dict }}
{{- if hasKey $source "root" }}{{ fail "config.source.root: set the top-level value `logsDir` instead (it is also the hostPath the chart mounts)" }}{{ end }}
{{- $messenger := get $cfg "messenger" | default dict }}
{{- if hasKey $messenger "apiKey" }}{{ fail "config.messenger.apiKey: never put the API key in a ConfigMap; use `secrets.pipekitSecretAccessKey` or `secrets.existingSecret`" }}{{ end }}
{{- if hasKey $messenger "apiKeyFile" }}{{ fail "config.messenger.apiKeyFile: the chart mounts the key from `secrets.*` and sets this itself" }}{{ end }}
{{- if hasKey $messenger "baseUri" }}{{ fail "config.messenger.baseUri: set the top-level value `messengerBaseUri` instead" }}{{ end }}
{{- $_ := set $cfg "dataDir" .Values.dataDir }}
{{- $_ := set $source "root" .Values.logsDir }}
{{- $_ := set $cfg "source" $source }}
{{- $_ := set $api "address" (printf "0.0.0.0:%d" (int .Values.api.port)) }}
{{- $_ := set $cfg "api" $api }}
{{- $_ := set $metadata "provider" .Values.metadataProvider }}
{{- $_ := set $cfg "metadata" $metadata }}
{{- if include "plc.secretName" . }}
{{- $_ := set $messenger "apiKeyFile" (include "plc.apiKeyPath" .) }}
{{- end }}
{{- if $messenger }}
{{- $_ := set $cfg "messenger" $messenger }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Checks that fail the render with a message naming the value. */}}
{{- define "plc.validate" -}}
{{- if ne (lower (toString .Values.role)) "agent" }}
{{- fail (printf "role: %q is not supported: pipekit-log-collector only has the agent role (one collector per node, a DaemonSet). Remove `role` or set it to \"agent\"." (toString .Values.role)) }}
{{- end }}
{{- if not (has .Values.metadataProvider (list "apiserver" "kubelet" "static")) }}
{{- fail (printf "metadataProvider: %q is not one of apiserver, kubelet, static" (toString .Values.metadataProvider)) }}
{{- end }}
{{- $ru := .Values.updateStrategy.rollingUpdate | default dict }}
{{- if and (eq .Values.updateStrategy.type "RollingUpdate") (not (has (toString (get $ru "maxSurge" | default 0)) (list "0" "0%"))) }}
{{- fail "updateStrategy.rollingUpdate.maxSurge must be 0: a surged pod would share the node's data dir with the old one (the second collector exits on the data dir lock)" }}
{{- end }}
{{- if not (hasPrefix "/" (toString .Values.dataDir)) }}
{{- fail (printf "dataDir: %q must be an absolute host path" (toString .Values.dataDir)) }}
{{- end }}
{{- if and .Values.dockerDataDir (not (hasPrefix "/" (toString .Values.dockerDataDir))) }}
{{- fail (printf "dockerDataDir: %q must be an absolute host path" (toString .Values.dockerDataDir)) }}
{{- end }}
{{- if not (hasPrefix "/" (toString .Values.persistence.hostPath.path)) }}
{{- fail (printf "persistence.hostPath.path: %q must be an absolute host path" (toString .Values.persistence.hostPath.path)) }}
{{- end }}
{{- $envNames := splitList "\n" (include "plc.envNames" .) }}
{{- /* What the collector cannot start without. envFrom and existingConfigMaps are opaque here, so
  they count as possible sources; everything else is checked by name. */}}
{{- $urlSource := or (include "plc.messengerBaseUri" .) (has "PIPEKIT_MESSENGER_BASE_URI" $envNames) .Values.envFrom .Values.existingConfigMaps }}
{{- if not $urlSource }}
{{- fail "messengerBaseUri: set the Pipekit messenger's base URI (--set messengerBaseUri=https://...; under the Pipekit Agent chart, configMap.messengerBaseUri), or PIPEKIT_MESSENGER_BASE_URI through env or envFrom. Without it the collector refuses to start." }}
{{- end }}
{{- $keySource := or (include "plc.secretName" .) (has "PIPEKIT_API_KEY" $envNames) (include "plc.envFromSecret" .) }}
{{- if not $keySource }}
{{- fail "secrets.pipekitSecretAccessKey or secrets.existingSecret: set the Pipekit API key (inline, or the name of a Secret holding it under secrets.existingSecretKey), or list a Secret holding PIPEKIT_API_KEY in envFrom. Without it every delivery is refused." }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "serviceMonitor.enabled needs service.enabled: the ServiceMonitor selects the metrics Service" }}
{{- end }}
{{- end }}
