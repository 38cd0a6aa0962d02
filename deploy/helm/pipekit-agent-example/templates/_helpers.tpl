{{/* Refusals, each naming the value to set. */}}
{{- define "pipekit-agent.validate" -}}
{{- if .Values.vector.enabled }}
{{- if not .Values.configMap.messengerBaseUri }}
{{- fail "configMap.messengerBaseUri: set the Pipekit messenger's base URI; vector.enabled ships logs to it" }}
{{- end }}
{{- if not (or .Values.secrets.pipekitSecretAccessKey .Values.secrets.existingSecret) }}
{{- fail "secrets.pipekitSecretAccessKey or secrets.existingSecret: set the Pipekit API key (or the name of your Secret holding it); vector.enabled needs it" }}
{{- end }}
{{- if .Values.secrets.existingSecret }}
{{- $own := false }}
{{- range .Values.vector.envFrom }}
{{- if and (kindIs "map" .) (get . "secretRef") (eq (tpl (toString (get (get . "secretRef") "name")) $) $.Release.Name) }}{{ $own = true }}{{ end }}
{{- end }}
{{- if $own }}
{{- fail (printf "secrets.existingSecret: the log shipper still reads the chart's own Secret, which is not created with secrets.existingSecret; add --set vector.envFrom[0].secretRef.name=%s" .Values.secrets.existingSecret) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
