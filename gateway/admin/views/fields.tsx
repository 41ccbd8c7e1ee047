/** Form pieces every console form uses: a field's error, and a labelled text field with its help and error. */

export type FieldErrors = Readonly<Record<string, string>>;

export function FieldError({ errors, name }: { errors: FieldErrors | undefined; name: string }) {
  const message = errors?.[name];
  return message === undefined ? null : (
    <p class="field-error" id={`${name.replace(/\./g, "-")}-error`}>
      {message}
    </p>
  );
}

/** A labelled text input, its help line and its error (aria-invalid and -describedby when refused). */
export function TextField<V extends object>({
  name,
  label,
  values,
  errors,
  help,
  mono,
  inputMode,
  placeholder,
  list,
  required,
  maxLength,
}: {
  name: keyof V & string;
  label: string;
  values: V;
  errors: FieldErrors | undefined;
  help?: string;
  mono?: boolean;
  inputMode?: "numeric" | "decimal";
  placeholder?: string;
  list?: string;
  required?: boolean;
  maxLength?: number;
}) {
  const value: unknown = values[name];
  const invalid = errors?.[name] !== undefined;
  return (
    <div>
      <label for={name} class="field-label">
        {label}
      </label>
      <input
        id={name}
        name={name}
        class={mono === true ? "field-input font-mono" : "field-input"}
        value={typeof value === "string" ? value : ""}
        autocomplete="off"
        {...(inputMode === undefined ? {} : { inputMode })}
        {...(placeholder === undefined ? {} : { placeholder })}
        {...(list === undefined ? {} : { list })}
        {...(required === true ? { required: true } : {})}
        {...(maxLength === undefined ? {} : { maxLength })}
        {...(invalid ? { "aria-invalid": "true", "aria-describedby": `${name}-error` } : {})}
      />
      {help === undefined ? null : <p class="field-help">{help}</p>}
      <FieldError errors={errors} name={name} />
    </div>
  );
}
