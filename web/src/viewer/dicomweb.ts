// A standard DICOMweb client (QIDO-RS, WADO-RS metadata, rendered): the only server API the viewer reads.
// The base URL is configurable (?dicomweb=...; default /dicomweb on the same origin); the bearer token is the
// page's token from src/common/api.ts.
import { ApiError, token } from "../common/api";
import { streamSeries, type StreamMode } from "./bundle";

export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

export interface SeriesInfo {
  studyUid: string;
  seriesUid: string;
  modality: string;
  description: string;
  number: number;
  instances: DicomJson[]; // sorted along the slice normal (see sortInstances)
}

export interface StudyInfo {
  studyUid: string;
  patientId: string;
  date: string;
  description: string;
}

export function value<T = unknown>(item: DicomJson, tag: string): T | undefined {
  return item[tag]?.Value?.[0] as T | undefined;
}

export function values(item: DicomJson, tag: string): number[] {
  return (item[tag]?.Value ?? []).map(Number);
}

export class DicomWebClient {
  readonly base: string;

  constructor(base: string) {
    this.base = new URL(base.replace(/\/+$/, ""), location.href).href;
  }

  headers(accept: string): Headers {
    const headers = new Headers({ Accept: accept });
    const bearer = token();
    if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
    return headers;
  }

  async json(path: string): Promise<DicomJson[]> {
    const response = await fetch(this.base + path, { headers: this.headers("application/dicom+json") });
    if (!response.ok) throw await failure(response);
    const text = await response.text(); // 204 No Content is an empty result
    return text ? (JSON.parse(text) as DicomJson[]) : [];
  }

  async study(studyUid: string): Promise<StudyInfo | undefined> {
    const [found] = await this.json(`/studies?StudyInstanceUID=${studyUid}&includefield=00100020`);
    return found && studyInfo(found);
  }

  async studiesOfPatient(patientId: string): Promise<StudyInfo[]> {
    return (await this.json(`/studies?PatientID=${encodeURIComponent(patientId)}`)).map(studyInfo);
  }

  /** ``stream``: start streaming the bundle of the series shown first (``first``, else the first by number) and
   * take its metadata from the bundle's header when the server has one. */
  async seriesOf(studyUid: string, stream: StreamMode | false = false, first?: string): Promise<SeriesInfo[]> {
    const found = (await this.json(`/studies/${studyUid}/series`))
      .sort((a, b) => Number(value(a, "00200011") ?? 0) - Number(value(b, "00200011") ?? 0));
    performance.mark("viewer:series-listed");
    const streamed = found.find((item) => value(item, "0020000E") === first) ?? found[0];
    const series = await Promise.all(
      found.map(async (item) => {
        const seriesUid = value<string>(item, "0020000E")!;
        const path = `/studies/${studyUid}/series/${seriesUid}`;
        const bundled = stream && item === streamed ? await streamSeries(this.base + path, stream) : null;
        const instances = (bundled as DicomJson[] | null) ?? await this.json(`${path}/metadata`);
        return {
          studyUid,
          seriesUid,
          modality: value<string>(item, "00080060") ?? "",
          description: value<string>(item, "0008103E") ?? "",
          number: Number(value(item, "00200011") ?? 0),
          instances: sortInstances(instances.filter((i) => value(i, "00280010") !== undefined)), // images only
        };
      }),
    );
    return series.filter((s) => s.instances.length > 0).sort((a, b) => a.number - b.number);
  }

  seriesUrl(series: SeriesInfo): string {
    return `${this.base}/studies/${series.studyUid}/series/${series.seriesUid}`;
  }

  /** One image id per frame (multi-frame instances give several). */
  frameImageIds(series: SeriesInfo, instance: DicomJson): string[] {
    const sop = value<string>(instance, "00080018");
    const frames = Math.max(1, Number(value(instance, "00280008") ?? 1));
    const prefix = `wadors:${this.seriesUrl(series)}/instances/${sop}/frames/`;
    return Array.from({ length: frames }, (_, i) => `${prefix}${i + 1}`);
  }

  /** A thumbnail of the series' middle image from the rendered endpoint, as an object URL. */
  async thumbnail(series: SeriesInfo): Promise<string> {
    const middle = series.instances[Math.floor(series.instances.length / 2)];
    const sop = value<string>(middle, "00080018");
    const path = `/studies/${series.studyUid}/series/${series.seriesUid}/instances/${sop}/rendered`;
    const response = await fetch(this.base + path, { headers: this.headers("image/jpeg") });
    if (!response.ok) throw await failure(response);
    return URL.createObjectURL(await response.blob());
  }
}

async function failure(response: Response): Promise<ApiError> {
  let problem: { title?: string; detail?: string } = {};
  try {
    problem = await response.json();
  } catch {
    // not problem+json (e.g. another DICOMweb server): status text only
  }
  return new ApiError(response.status, problem.title ?? response.statusText, problem.detail ?? response.url);
}

function studyInfo(item: DicomJson): StudyInfo {
  return {
    studyUid: value<string>(item, "0020000D")!,
    patientId: value<string>(item, "00100020") ?? "",
    date: value<string>(item, "00080020") ?? "",
    description: value<string>(item, "00081030") ?? "",
  };
}

/** Position of an instance along its slice normal (mm), the order a stack is shown in. */
export function slicePosition(instance: DicomJson): number {
  const position = values(instance, "00200032");
  const o = values(instance, "00200037");
  if (position.length !== 3 || o.length !== 6) return Number(value(instance, "00200013") ?? 0);
  const normal = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
  return position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2];
}

function sortInstances(instances: DicomJson[]): DicomJson[] {
  return [...instances].sort((a, b) => slicePosition(a) - slicePosition(b));
}
