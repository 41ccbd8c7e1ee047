{{/* Names, labels and the pieces every platform container shares. */}}

{{- define "sf.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sf.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "sf.selector" (list . "gateway") */}}
{{- define "sf.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sf.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "sf.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" (include "sf.fullname" .) -}}
{{- else -}}
{{- required "nats.url is required when nats.enabled is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "sf.secretName" -}}
{{- required "secrets.existingSecret must name a Secret" .Values.secrets.existingSecret -}}
{{- end -}}

{{/* One environment variable from the Secret, under its own name: include "sf.secretEnv" (list . "SF_JWT_SECRET" true) */}}
{{- define "sf.secretEnv" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sf.secretName" $root }}
      key: {{ index . 1 }}
      optional: {{ index . 2 }}
{{- end -}}

{{/* What every platform process must agree on (see values.yaml, platform). */}}
{{- define "sf.platformEnv" -}}
- name: NATS_URL
  value: {{ include "sf.natsUrl" . | quote }}
- name: SF_SUBJECT_PREFIX
  value: {{ .Values.platform.subjectPrefix | quote }}
- name: SF_PARTITIONS
  value: {{ .Values.platform.partitions | quote }}
- name: SF_LOG_LEVEL
  value: {{ .Values.platform.logLevel | quote }}
{{- end -}}

{{- define "sf.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "sf.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* Writable places of the read-only platform image: /tmp (tsx's cache) and /app/.sidekick. */}}
{{- define "sf.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /app/.sidekick
{{- end -}}

{{- define "sf.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end -}}

{{/* Spread the replicas of a component over nodes where the scheduler can. */}}
{{- define "sf.spread" -}}
{{- $root := index . 0 -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "sf.selector" (list $root (index . 1)) | nindent 14 }}
{{- end -}}
