/** What each scenario hands back for BENCHMARKS.md. */
export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface Section {
  readonly title: string;
  /** Markdown: a short description and a table. */
  readonly body: string;
  readonly targets: readonly Target[];
}

export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
