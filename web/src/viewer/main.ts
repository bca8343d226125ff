// The viewer page's entry: asks the DICOMweb server for the study's series and metadata at once, while the large
// rendering code (Cornerstone3D, in app.ts) is still being fetched and compiled.
import { takeTokenFromUrl } from "../common/api";
import { DicomWebClient, type SeriesInfo } from "./dicomweb";

takeTokenFromUrl();
const params = new URLSearchParams(location.search);
const study = params.get("study");
const client = new DicomWebClient(params.get("dicomweb") ?? "/dicomweb");
// The first series' bundle (metadata, then frames) starts streaming now, while Cornerstone is still loading.
const seriesOfStudy: Promise<SeriesInfo[]> = study ? client.seriesOf(study, true) : Promise.resolve([]);
seriesOfStudy.catch(() => undefined); // reported by app.start

import("./app")
  .then((app) => app.start(seriesOfStudy).catch(app.failed))
  .catch((error) => {
    document.getElementById("statusbar")!.textContent = `加载失败：${String(error)}`;
  });
