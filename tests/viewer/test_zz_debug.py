from tests.viewer.test_viewer import choose_tool, drag, pixel, hook, G, ARTIFACTS
def test_dbg(viewer):
    page = viewer
    page.on("console", lambda m: print("console:", m.text[:200]))
    choose_tool(page, "CT值")
    page.mouse.click(*pixel(page, 0, G.rod[0], G.rod[1]))
    page.wait_for_timeout(500)
    print("probe", hook(page, "lastMeasurement"))
    choose_tool(page, "区域统计")
    r0, r1, c0, c1 = G.checker
    drag(page, pixel(page, 0, r0 + 2, c0 + 2), pixel(page, 0, r1 - 3, c1 - 3))
    print("roi", hook(page, "lastMeasurement"))
    page.screenshot(path=str(ARTIFACTS / "dbg.png"))
