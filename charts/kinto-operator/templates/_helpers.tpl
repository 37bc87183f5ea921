{{- /*
An object's metadata labels: its own (.labels, which win) and the chart-wide commonLabels;
nothing when both are empty, as in the bundle. Indented under metadata:, on a new line. Never used for selectors, which must not change
across upgrades.
*/ -}}
{{- define "kinto-operator.labels" -}}
{{- with merge (dict) (.labels | default dict) .root.Values.commonLabels }}
{{- printf "labels:\n%s" (toYaml . | indent 2) | nindent 2 }}
{{- end }}
{{- end }}
