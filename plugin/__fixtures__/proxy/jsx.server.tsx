import { renderToString } from 'react-dom/server';

export async function renderCard(ctx: unknown, title: string) {
  return renderToString(<div className="card">{title}</div>);
}
