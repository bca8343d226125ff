// A typical CT report, for trying the page without a report of one's own.
export const SAMPLE_REPORT = `检查所见：
双肺纹理清晰，右肺上叶见一磨玻璃结节，大小约6mm，边界清楚。未见胸腔积液，纵隔淋巴结未见肿大。
肝脏形态正常，肝实质密度弥漫性减低。胆囊内见高密度结石影。
诊断意见：
1. 右肺上叶磨玻璃结节，建议12个月后复查。
2. 脂肪肝。
3. 胆囊结石。
4. 未见胸腔积液。`;
