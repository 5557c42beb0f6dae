import * as React from 'react';

/** What failed, shown where it failed (announced to screen readers); nothing when all is well. */
export function ErrorNote(props: { message: string | null | undefined; id?: string }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <div className="jp-ProphecySidebar-error" role="alert" id={props.id}>
      {props.message}
    </div>
  );
}
