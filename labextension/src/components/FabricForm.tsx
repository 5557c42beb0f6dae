import * as React from 'react';

import { ApiError } from '../handler';
import { FabricsModel, messageOf } from '../model';
import { IFabric, IFabricSpec } from '../tokens';
import { ErrorNote } from './ErrorNote';

interface ISettingField {
  name: string;
  label: string;
  required?: boolean;
  options?: string[];
  placeholder?: string;
}

const DATABRICKS_AUTH: ISettingField[] = [
  { name: 'host', label: 'Workspace URL', required: true, placeholder: 'https://adb-123.azuredatabricks.net' },
  { name: 'auth', label: 'Authentication', options: ['pat', 'oauth-m2m', 'profile'] },
  { name: 'client_id', label: 'OAuth client ID (oauth-m2m)' },
  { name: 'profile', label: '~/.databrickscfg profile (profile)' }
];

/** The settings each kind takes (never a secret: those are each user's own). */
export const SETTINGS_BY_KIND: Record<string, ISettingField[]> = {
  livy: [
    { name: 'url', label: 'Livy URL', required: true, placeholder: 'https://livy.example.com:8998' },
    { name: 'auth', label: 'Authentication', options: ['none', 'basic', 'bearer', 'kerberos'] },
    { name: 'username', label: 'Username (basic auth)' },
    { name: 'ca_bundle', label: 'CA bundle path (private CA)' },
    { name: 'allow_http', label: 'Plain http to another machine (unencrypted)', options: ['false', 'true'] },
    { name: 'airflow_fabric', label: 'Airflow fabric for its jobs (team/name)' },
    { name: 'airflow_connection', label: "Airflow's connection id for this Livy", placeholder: 'livy_default' },
    { name: 'code_location', label: "Where Livy reads jobs' code", placeholder: 'hdfs:///prophecy' }
  ],
  databricks: [
    ...DATABRICKS_AUTH,
    { name: 'cluster_id', label: 'Cluster ID', required: true },
    { name: 'job_code', label: "Jobs' code from", options: ['workspace', 'git'] },
    { name: 'job_code_root', label: "Workspace folder for jobs' code", placeholder: '/Shared/prophecy' }
  ],
  'databricks-sql': [
    ...DATABRICKS_AUTH,
    { name: 'warehouse_id', label: 'SQL warehouse ID', required: true },
    { name: 'catalog', label: 'Catalog' },
    { name: 'schema', label: 'Schema' }
  ],
  snowflake: [
    { name: 'account', label: 'Account', required: true, placeholder: 'myorg-myaccount' },
    { name: 'user', label: 'User', required: true },
    { name: 'auth', label: 'Authentication', options: ['password', 'key-pair', 'oauth', 'pat'] },
    { name: 'warehouse', label: 'Warehouse' },
    { name: 'database', label: 'Database' },
    { name: 'schema', label: 'Schema' },
    { name: 'role', label: 'Role' },
    { name: 'host', label: 'Host (private link; default <account>.snowflakecomputing.com)' },
    { name: 'port', label: 'Port (with host)' },
    { name: 'protocol', label: 'Protocol (http only to this machine)', options: ['https', 'http'] },
    { name: 'login_timeout', label: 'Login timeout (s)', placeholder: '60' }
  ],
  'snowpark-local': [],
  airflow: [
    { name: 'url', label: 'Airflow URL', required: true, placeholder: 'https://airflow.example.com' },
    { name: 'auth', label: 'Authentication', options: ['password', 'token', 'none'] },
    { name: 'username', label: 'Username (password auth)' },
    { name: 'dags_folder', label: "DAGs folder on this server (read by Airflow's DAG processor)" },
    { name: 'ca_bundle', label: 'CA bundle path (private CA)' }
  ]
};

const ENVIRONMENTS = ['dev', 'staging', 'prod'];
const EXAMPLE_SIZES = '{"S": {"driverMemory": "1g", "numExecutors": 1}, "L": {"executorMemory": "8g", "numExecutors": 8}}';

/** `key=value` lines to an object, and back. */
function confOf(text: string): Record<string, string> {
  const conf: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (line.trim()) {
      if (at < 1) {
        throw new ApiError(`"${line.trim()}" is not key=value`, 400, 'conf');
      }
      conf[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  }
  return conf;
}

function sizesOf(text: string): Record<string, Record<string, unknown>> {
  if (!text.trim()) {
    return {};
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(`Job sizes need JSON, e.g. ${EXAMPLE_SIZES}`, 400, 'job_sizes');
  }
}

/** The form's field for an API error's field (`settings.url` → `url`). */
function fieldOf(error: unknown): string | null {
  const field = error instanceof ApiError ? error.field : null;
  return field ? field.replace(/^settings\./, '') : null;
}

/** Create a fabric in a team, or change one (team admins): kind-specific fields and job sizes. */
export function FabricForm(props: {
  model: FabricsModel;
  team: string;
  fabric?: IFabric;
  onDone: () => void;
}): JSX.Element {
  const { model, team, fabric, onDone } = props;
  const [name, setName] = React.useState(fabric?.name ?? '');
  const [kind, setKind] = React.useState(fabric?.kind ?? 'livy');
  const [environment, setEnvironment] = React.useState(fabric?.environment ?? 'dev');
  const [settings, setSettings] = React.useState<Record<string, string>>(
    Object.fromEntries(Object.entries(fabric?.settings ?? {}).map(([key, value]) => [key, String(value ?? '')]))
  );
  const [conf, setConf] = React.useState(
    Object.entries(fabric?.conf ?? {})
      .map(([key, value]) => `${key}=${value}`)
      .join('\n')
  );
  const [sizes, setSizes] = React.useState(
    fabric && Object.keys(fabric.job_sizes).length ? JSON.stringify(fabric.job_sizes, null, 1) : ''
  );
  const [error, setError] = React.useState<{ field: string | null; message: string } | null>(null);
  const [saving, setSaving] = React.useState(false);
  const fields = SETTINGS_BY_KIND[kind] ?? [];
  const prefix = fabric ? `fabric-${fabric.id}` : `new-fabric-${team}`;
  const placed = !!error?.field && ['name', 'conf', 'job_sizes', ...fields.map(f => f.name)].includes(error.field);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setSaving(true);
    try {
      const known = new Set(fields.map(field => field.name));
      const spec: IFabricSpec = {
        name,
        kind,
        environment,
        settings: Object.fromEntries(Object.entries(settings).filter(([key, value]) => known.has(key) && value)),
        conf: confOf(conf),
        job_sizes: sizesOf(sizes)
      };
      await model.saveFabric(spec, fabric ? { fabric } : { team });
      setError(null);
      onDone();
    } catch (failure) {
      setError({ field: fieldOf(failure), message: messageOf(failure) });
    } finally {
      setSaving(false);
    }
  };

  const errorFor = (field: string) => (
    <ErrorNote message={error?.field === field ? error.message : null} id={`${prefix}-${field}-error`} />
  );
  const input = (field: string, label: string, control: JSX.Element) => (
    <div className="jp-ProphecySidebar-field" key={field}>
      <label htmlFor={`${prefix}-${field}`}>{label}</label>
      {control}
      {errorFor(field)}
    </div>
  );

  return (
    <form
      className="jp-ProphecySidebar-form"
      onSubmit={submit}
      aria-label={fabric ? `Edit fabric ${fabric.ref}` : `New fabric in team ${team}`}
    >
      {input(
        'name',
        'Name',
        <input id={`${prefix}-name`} value={name} required onChange={event => setName(event.target.value)} />
      )}
      {input(
        'kind',
        'Kind',
        <select
          id={`${prefix}-kind`}
          value={kind}
          disabled={!!fabric}
          onChange={event => setKind(event.target.value)}
        >
          {Object.keys(SETTINGS_BY_KIND).map(option => (
            <option key={option}>{option}</option>
          ))}
        </select>
      )}
      {input(
        'environment',
        'Environment',
        <select id={`${prefix}-environment`} value={environment} onChange={event => setEnvironment(event.target.value)}>
          {ENVIRONMENTS.map(option => (
            <option key={option}>{option}</option>
          ))}
        </select>
      )}
      {fields.map(field =>
        input(
          field.name,
          field.label,
          field.options ? (
            <select
              id={`${prefix}-${field.name}`}
              value={settings[field.name] ?? field.options[0]}
              onChange={event => setSettings({ ...settings, [field.name]: event.target.value })}
            >
              {field.options.map(option => (
                <option key={option}>{option}</option>
              ))}
            </select>
          ) : (
            <input
              id={`${prefix}-${field.name}`}
              value={settings[field.name] ?? ''}
              required={field.required}
              placeholder={field.placeholder}
              onChange={event => setSettings({ ...settings, [field.name]: event.target.value })}
            />
          )
        )
      )}
      {input(
        'conf',
        'Spark conf (key=value per line)',
        <textarea id={`${prefix}-conf`} rows={2} value={conf} onChange={event => setConf(event.target.value)} />
      )}
      {input(
        'job_sizes',
        'Job sizes (JSON)',
        <textarea
          id={`${prefix}-job_sizes`}
          rows={3}
          value={sizes}
          placeholder={EXAMPLE_SIZES}
          onChange={event => setSizes(event.target.value)}
        />
      )}
      <ErrorNote message={placed ? null : error?.message} />
      <div className="jp-ProphecySidebar-actions">
        <button className="jp-Button jp-mod-accept" type="submit" disabled={saving}>
          {fabric ? 'Save fabric' : 'Create fabric'}
        </button>
        <button className="jp-Button" type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
